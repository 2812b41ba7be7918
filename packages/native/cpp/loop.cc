/*
 * Loop device ioctls: LOOP_CTL_GET_FREE, LOOP_CONFIGURE (atomic setup, 5.8+), LOOP_GET_STATUS64,
 * LOOP_SET_STATUS64 (flags), LOOP_CLR_FD, LOOP_SET_CAPACITY. Finding a free device, retrying when
 * another process takes it first, and closing fds are policy and live in core's blockdev/. All
 * Promise-based: block device ioctls can wait on I/O.
 */
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "args.h"
#include "async.h"

// Kernel headers before 5.8 lack LOOP_CONFIGURE; the ABI is fixed, so build it anyway and let an
// old kernel answer EINVAL/ENOTTY at run time.
#ifndef LOOP_CONFIGURE
#define LOOP_CONFIGURE 0x4C0A
struct loop_config {
  __u32 fd;
  __u32 block_size;
  struct loop_info64 info;
  __u64 __reserved[8];
};
#endif

namespace gd {
namespace {

Napi::Value LoopGetFree(const Napi::CallbackInfo& info) {
  return Run<true>(
      info.Env(),
      [](SysError& e) {
        int ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
        if (ctl < 0) {
          e.Set(errno, "open", "/dev/loop-control");
          return -1;
        }
        int n = ioctl(ctl, LOOP_CTL_GET_FREE);
        if (n < 0) e.Set(errno, "ioctl(LOOP_CTL_GET_FREE)", "/dev/loop-control");
        close(ctl);
        return n;
      },
      NumberOf);
}

Napi::Value LoopConfigure(const Napi::CallbackInfo& info) {
  Args a(info);
  int loopFd = a.Fd(0, "loopFd");
  int backingFd = a.Fd(1, "backingFd");
  constexpr int64_t kMaxSafe = 9007199254740991LL;
  struct loop_config config;
  std::memset(&config, 0, sizeof config);
  config.fd = static_cast<__u32>(backingFd);
  config.info.lo_flags = a.OptUint32(2, "opts.flags", 0);
  config.info.lo_offset = static_cast<__u64>(a.OptInteger(3, "opts.offset", 0, kMaxSafe, 0));
  config.info.lo_sizelimit = static_cast<__u64>(a.OptInteger(4, "opts.sizeLimit", 0, kMaxSafe, 0));
  config.block_size = a.OptUint32(5, "opts.blockSize", 0);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [loopFd, config](SysError& e) {
        struct loop_config c = config;
        if (ioctl(loopFd, LOOP_CONFIGURE, &c) != 0) e.Set(errno, "ioctl(LOOP_CONFIGURE)");
        return Nothing{};
      },
      Undefined);
}

struct LoopStatus {
  struct loop_info64 info;
  std::string backingFile;
};

// lo_file_name holds only 63 bytes of the path; sysfs has all of it (with " (deleted)" appended
// when the file was unlinked), so prefer sysfs and fall back to the ioctl's copy.
std::string BackingFile(int loopFd, const struct loop_info64& info) {
  struct stat st;
  if (fstat(loopFd, &st) == 0 && S_ISBLK(st.st_mode)) {
    std::string sys = "/sys/dev/block/" + std::to_string(major(st.st_rdev)) + ":" + std::to_string(minor(st.st_rdev)) +
                      "/loop/backing_file";
    int fd = open(sys.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[4097];
      ssize_t n = read(fd, buf, sizeof buf - 1);
      close(fd);
      if (n > 0) {
        while (n > 0 && buf[n - 1] == '\n') n--;
        return std::string(buf, static_cast<size_t>(n));
      }
    }
  }
  const char* name = reinterpret_cast<const char*>(info.lo_file_name);
  return std::string(name, strnlen(name, LO_NAME_SIZE));
}

Napi::Value LoopStatusJs(const Napi::CallbackInfo& info) {
  Args a(info);
  int loopFd = a.Fd(0, "loopFd");
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [loopFd](SysError& e) {
        LoopStatus s;
        std::memset(&s.info, 0, sizeof s.info);
        if (ioctl(loopFd, LOOP_GET_STATUS64, &s.info) != 0) {
          e.Set(errno, "ioctl(LOOP_GET_STATUS64)");
          return s;
        }
        s.backingFile = BackingFile(loopFd, s.info);
        return s;
      },
      [](Napi::Env env, LoopStatus& s) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("number", Napi::Number::New(env, s.info.lo_number));
        out.Set("device", Napi::Number::New(env, static_cast<double>(s.info.lo_device)));
        out.Set("inode", Napi::Number::New(env, static_cast<double>(s.info.lo_inode)));
        out.Set("rdevice", Napi::Number::New(env, static_cast<double>(s.info.lo_rdevice)));
        out.Set("offset", Napi::Number::New(env, static_cast<double>(s.info.lo_offset)));
        out.Set("sizeLimit", Napi::Number::New(env, static_cast<double>(s.info.lo_sizelimit)));
        out.Set("flags", Napi::Number::New(env, s.info.lo_flags));
        out.Set("backingFile", Napi::String::New(env, s.backingFile));
        return out;
      });
}

// LOOP_SET_STATUS64 with only the flags changed: the status is read first, so offset and size
// limit stay as they are. The kernel changes AUTOCLEAR (both ways) and PARTSCAN (set only) here.
Napi::Value LoopSetFlags(const Napi::CallbackInfo& info) {
  Args a(info);
  int loopFd = a.Fd(0, "loopFd");
  uint32_t flags = a.Uint32(1, "flags");
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [loopFd, flags](SysError& e) {
        struct loop_info64 li;
        std::memset(&li, 0, sizeof li);
        if (ioctl(loopFd, LOOP_GET_STATUS64, &li) != 0) {
          e.Set(errno, "ioctl(LOOP_GET_STATUS64)");
          return Nothing{};
        }
        li.lo_flags = flags;
        if (ioctl(loopFd, LOOP_SET_STATUS64, &li) != 0) e.Set(errno, "ioctl(LOOP_SET_STATUS64)");
        return Nothing{};
      },
      Undefined);
}

// LOOP_CLR_FD and LOOP_SET_CAPACITY: an ioctl on the loop fd with no argument.
template <unsigned long Request>
Napi::Value LoopSimple(const Napi::CallbackInfo& info) {
  Args a(info);
  int loopFd = a.Fd(0, "loopFd");
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [loopFd](SysError& e) {
        if (ioctl(loopFd, Request, 0) != 0) {
          e.Set(errno, Request == LOOP_CLR_FD ? "ioctl(LOOP_CLR_FD)" : "ioctl(LOOP_SET_CAPACITY)");
        }
        return Nothing{};
      },
      Undefined);
}

}  // namespace

void InitLoop(Napi::Env env, Napi::Object exports) {
  exports.Set("loopGetFree", Napi::Function::New(env, LoopGetFree, "loopGetFree"));
  exports.Set("loopConfigure", Napi::Function::New(env, LoopConfigure, "loopConfigure"));
  exports.Set("loopStatus", Napi::Function::New(env, LoopStatusJs, "loopStatus"));
  exports.Set("loopSetFlags", Napi::Function::New(env, LoopSetFlags, "loopSetFlags"));
  exports.Set("loopClear", Napi::Function::New(env, LoopSimple<LOOP_CLR_FD>, "loopClear"));
  exports.Set("loopSetCapacity", Napi::Function::New(env, LoopSimple<LOOP_SET_CAPACITY>, "loopSetCapacity"));

  Napi::Object constants = exports.Get("constants").As<Napi::Object>();
  Napi::Object lo = Napi::Object::New(env);
  SetConst(lo, "READ_ONLY", LO_FLAGS_READ_ONLY);
  SetConst(lo, "AUTOCLEAR", LO_FLAGS_AUTOCLEAR);
  SetConst(lo, "PARTSCAN", LO_FLAGS_PARTSCAN);
  SetConst(lo, "DIRECT_IO", LO_FLAGS_DIRECT_IO);
  constants.Set("LO_FLAGS", lo);
}

}  // namespace gd
