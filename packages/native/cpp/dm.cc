/*
 * Device-mapper: the raw ioctl on /dev/mapper/control and the ABI facts (sizes, offsets, ioctl
 * numbers, flags) read from <linux/dm-ioctl.h>, so that the TypeScript encoder in src/dm.ts can be
 * checked against the real header on any machine, with or without dm in its kernel.
 */
#include <fcntl.h>
#include <linux/dm-ioctl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

#include "args.h"
#include "async.h"

namespace gd {
namespace {

Napi::Object Offsets(Napi::Env env, std::initializer_list<std::pair<const char*, size_t>> fields) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& f : fields) SetConst(o, f.first, f.second);
  return o;
}

#define FIELD(type, name) {#name, offsetof(type, name)}

Napi::Value DmAbi(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object abi = Napi::Object::New(env);
  SetConst(abi, "size", sizeof(struct dm_ioctl));
  abi.Set("offsets", Offsets(env, {FIELD(struct dm_ioctl, version), FIELD(struct dm_ioctl, data_size),
                                   FIELD(struct dm_ioctl, data_start), FIELD(struct dm_ioctl, target_count),
                                   FIELD(struct dm_ioctl, open_count), FIELD(struct dm_ioctl, flags),
                                   FIELD(struct dm_ioctl, event_nr), FIELD(struct dm_ioctl, padding),
                                   FIELD(struct dm_ioctl, dev), FIELD(struct dm_ioctl, name),
                                   FIELD(struct dm_ioctl, uuid), FIELD(struct dm_ioctl, data)}));
  SetConst(abi, "targetSpecSize", sizeof(struct dm_target_spec));
  abi.Set("targetSpecOffsets",
          Offsets(env, {FIELD(struct dm_target_spec, sector_start), FIELD(struct dm_target_spec, length),
                        FIELD(struct dm_target_spec, status), FIELD(struct dm_target_spec, next),
                        FIELD(struct dm_target_spec, target_type)}));
  SetConst(abi, "nameListSize", sizeof(struct dm_name_list));
  abi.Set("nameListOffsets",
          Offsets(env, {FIELD(struct dm_name_list, dev), FIELD(struct dm_name_list, next), FIELD(struct dm_name_list, name)}));
  SetConst(abi, "targetMsgSize", sizeof(struct dm_target_msg));
  abi.Set("targetMsgOffsets", Offsets(env, {FIELD(struct dm_target_msg, sector), FIELD(struct dm_target_msg, message)}));
  SetConst(abi, "targetDepsSize", sizeof(struct dm_target_deps));
  abi.Set("targetDepsOffsets", Offsets(env, {FIELD(struct dm_target_deps, count), FIELD(struct dm_target_deps, padding),
                                             FIELD(struct dm_target_deps, dev)}));
  SetConst(abi, "targetVersionsSize", sizeof(struct dm_target_versions));
  abi.Set("targetVersionsOffsets", Offsets(env, {FIELD(struct dm_target_versions, next),
                                                 FIELD(struct dm_target_versions, version),
                                                 FIELD(struct dm_target_versions, name)}));

  Napi::Object ioctls = Napi::Object::New(env);
  SetConst(ioctls, "VERSION", DM_VERSION);
  SetConst(ioctls, "REMOVE_ALL", DM_REMOVE_ALL);
  SetConst(ioctls, "LIST_DEVICES", DM_LIST_DEVICES);
  SetConst(ioctls, "DEV_CREATE", DM_DEV_CREATE);
  SetConst(ioctls, "DEV_REMOVE", DM_DEV_REMOVE);
  SetConst(ioctls, "DEV_RENAME", DM_DEV_RENAME);
  SetConst(ioctls, "DEV_SUSPEND", DM_DEV_SUSPEND);
  SetConst(ioctls, "DEV_STATUS", DM_DEV_STATUS);
  SetConst(ioctls, "DEV_WAIT", DM_DEV_WAIT);
  SetConst(ioctls, "TABLE_LOAD", DM_TABLE_LOAD);
  SetConst(ioctls, "TABLE_CLEAR", DM_TABLE_CLEAR);
  SetConst(ioctls, "TABLE_DEPS", DM_TABLE_DEPS);
  SetConst(ioctls, "TABLE_STATUS", DM_TABLE_STATUS);
  SetConst(ioctls, "LIST_VERSIONS", DM_LIST_VERSIONS);
  SetConst(ioctls, "TARGET_MSG", DM_TARGET_MSG);
  SetConst(ioctls, "DEV_SET_GEOMETRY", DM_DEV_SET_GEOMETRY);
  abi.Set("ioctls", ioctls);

  Napi::Object flags = Napi::Object::New(env);
  SetConst(flags, "READONLY", DM_READONLY_FLAG);
  SetConst(flags, "SUSPEND", DM_SUSPEND_FLAG);
  SetConst(flags, "PERSISTENT_DEV", DM_PERSISTENT_DEV_FLAG);
  SetConst(flags, "STATUS_TABLE", DM_STATUS_TABLE_FLAG);
  SetConst(flags, "ACTIVE_PRESENT", DM_ACTIVE_PRESENT_FLAG);
  SetConst(flags, "INACTIVE_PRESENT", DM_INACTIVE_PRESENT_FLAG);
  SetConst(flags, "BUFFER_FULL", DM_BUFFER_FULL_FLAG);
  SetConst(flags, "SKIP_BDGET", DM_SKIP_BDGET_FLAG);
  SetConst(flags, "SKIP_LOCKFS", DM_SKIP_LOCKFS_FLAG);
  SetConst(flags, "NOFLUSH", DM_NOFLUSH_FLAG);
  SetConst(flags, "QUERY_INACTIVE_TABLE", DM_QUERY_INACTIVE_TABLE_FLAG);
  SetConst(flags, "UEVENT_GENERATED", DM_UEVENT_GENERATED_FLAG);
  SetConst(flags, "UUID", DM_UUID_FLAG);
  SetConst(flags, "SECURE_DATA", DM_SECURE_DATA_FLAG);
  SetConst(flags, "DATA_OUT", DM_DATA_OUT_FLAG);
  SetConst(flags, "DEFERRED_REMOVE", DM_DEFERRED_REMOVE);
  SetConst(flags, "INTERNAL_SUSPEND", DM_INTERNAL_SUSPEND_FLAG);
  SetConst(flags, "NAME_LIST_HAS_UUID", DM_NAME_LIST_FLAG_HAS_UUID);
  SetConst(flags, "NAME_LIST_DOESNT_HAVE_UUID", DM_NAME_LIST_FLAG_DOESNT_HAVE_UUID);
  abi.Set("flags", flags);

  Napi::Array version = Napi::Array::New(env, 3);
  version.Set(0u, Napi::Number::New(env, DM_VERSION_MAJOR));
  version.Set(1u, Napi::Number::New(env, DM_VERSION_MINOR));
  version.Set(2u, Napi::Number::New(env, DM_VERSION_PATCHLEVEL));
  abi.Set("version", version);
  SetConst(abi, "nameLen", DM_NAME_LEN);
  SetConst(abi, "uuidLen", DM_UUID_LEN);
  SetConst(abi, "maxTypeName", DM_MAX_TYPE_NAME);
  return abi;
}

#undef FIELD

Napi::Value DmOpenControl(const Napi::CallbackInfo& info) {
  return Run<true>(
      info.Env(),
      [](SysError& e) {
        int fd = open("/dev/mapper/control", O_RDWR | O_CLOEXEC);
        if (fd < 0) e.Set(errno, "open", "/dev/mapper/control");
        return fd;
      },
      NumberOf);
}

const char* DmCommandName(unsigned long command) {
  switch (command) {
    case DM_VERSION: return "ioctl(DM_VERSION)";
    case DM_REMOVE_ALL: return "ioctl(DM_REMOVE_ALL)";
    case DM_LIST_DEVICES: return "ioctl(DM_LIST_DEVICES)";
    case DM_DEV_CREATE: return "ioctl(DM_DEV_CREATE)";
    case DM_DEV_REMOVE: return "ioctl(DM_DEV_REMOVE)";
    case DM_DEV_RENAME: return "ioctl(DM_DEV_RENAME)";
    case DM_DEV_SUSPEND: return "ioctl(DM_DEV_SUSPEND)";
    case DM_DEV_STATUS: return "ioctl(DM_DEV_STATUS)";
    case DM_DEV_WAIT: return "ioctl(DM_DEV_WAIT)";
    case DM_TABLE_LOAD: return "ioctl(DM_TABLE_LOAD)";
    case DM_TABLE_CLEAR: return "ioctl(DM_TABLE_CLEAR)";
    case DM_TABLE_DEPS: return "ioctl(DM_TABLE_DEPS)";
    case DM_TABLE_STATUS: return "ioctl(DM_TABLE_STATUS)";
    case DM_LIST_VERSIONS: return "ioctl(DM_LIST_VERSIONS)";
    case DM_TARGET_MSG: return "ioctl(DM_TARGET_MSG)";
    case DM_DEV_SET_GEOMETRY: return "ioctl(DM_DEV_SET_GEOMETRY)";
    default: return "ioctl(DM)";
  }
}

// The kernel reads data_size bytes from the buffer, so that field must not exceed the Buffer.
// When the answer does not fit, the kernel sets DM_BUFFER_FULL_FLAG: the request is sent again,
// as it was, in a buffer twice as large (up to 64 MiB, like libdevmapper's practical ceiling).
Napi::Value DmIoctl(const Napi::CallbackInfo& info) {
  Args a(info);
  int fd = a.Fd(0, "controlFd");
  uint32_t command = a.Uint32(1, "command");
  BytesArg buf;
  a.Bytes(2, "buf", buf);
  if (!a.ok()) return Napi::Value();
  if (((command >> 8) & 0xff) != DM_IOCTL) {
    return ThrowOutOfRange(a.env(), "command", "a device-mapper ioctl (type 0xfd)", info[1]);
  }
  if (buf.length < sizeof(struct dm_ioctl)) {
    return ThrowOutOfRange(a.env(), "buf.length", ">= sizeof(struct dm_ioctl)", Napi::Number::New(a.env(), static_cast<double>(buf.length)));
  }
  struct dm_ioctl header;
  std::memcpy(&header, buf.data, sizeof header);
  if (header.data_size < sizeof(struct dm_ioctl) || header.data_size > buf.length) {
    return ThrowOutOfRange(a.env(), "data_size", "between sizeof(struct dm_ioctl) and buf.length",
                           Napi::Number::New(a.env(), header.data_size));
  }
  std::vector<uint8_t> request(buf.data, buf.data + header.data_size);
  return Run<true>(
      a.env(),
      [fd, command, request = std::move(request)](SysError& e) {
        std::vector<uint8_t> io(request);
        for (;;) {
          if (ioctl(fd, command, io.data()) != 0) {
            e.Set(errno, DmCommandName(command));
            return io;
          }
          struct dm_ioctl out;
          std::memcpy(&out, io.data(), sizeof out);
          if ((out.flags & DM_BUFFER_FULL_FLAG) == 0 || io.size() >= (64u << 20)) return io;
          size_t bigger = io.size() * 2;
          io.assign(bigger, 0);
          std::memcpy(io.data(), request.data(), request.size());
          struct dm_ioctl* hdr = reinterpret_cast<struct dm_ioctl*>(io.data());
          hdr->data_size = static_cast<__u32>(bigger);
        }
      },
      [](Napi::Env env, std::vector<uint8_t>& io) -> Napi::Value {
        return Napi::Buffer<uint8_t>::Copy(env, io.data(), io.size());
      });
}

}  // namespace

void InitDm(Napi::Env env, Napi::Object exports) {
  exports.Set("dmAbi", Napi::Function::New(env, DmAbi, "dmAbi"));
  exports.Set("dmOpenControl", Napi::Function::New(env, DmOpenControl, "dmOpenControl"));
  exports.Set("dmIoctl", Napi::Function::New(env, DmIoctl, "dmIoctl"));
}

}  // namespace gd
