/*
 * The new mount API: fsopen / fsconfig / fsmount / move_mount / open_tree / mount_setattr.
 * Called through syscall(2) with our own constants, so the addon builds against glibc < 2.36 and
 * old kernel headers (RHEL 8/9, Debian 11) and fails at run time with ENOSYS on old kernels only.
 * When fsconfig or fsmount fails, the messages the filesystem queued on the fs_context fd ("e
 * overlay: failed to resolve '/x': -2") are read and attached to the error: they are usually the
 * only explanation of an EINVAL.
 */
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "args.h"
#include "async.h"

#ifndef __NR_open_tree
#define __NR_open_tree 428
#endif
#ifndef __NR_move_mount
#define __NR_move_mount 429
#endif
#ifndef __NR_fsopen
#define __NR_fsopen 430
#endif
#ifndef __NR_fsconfig
#define __NR_fsconfig 431
#endif
#ifndef __NR_fsmount
#define __NR_fsmount 432
#endif
#ifndef __NR_mount_setattr
#define __NR_mount_setattr 442
#endif

namespace gd {
namespace {

// Values from linux/mount.h, stable kernel ABI.
constexpr unsigned kFsopenCloexec = 0x1;
constexpr unsigned kFsmountCloexec = 0x1;
constexpr unsigned kOpenTreeClone = 1;
constexpr unsigned kOpenTreeCloexec = O_CLOEXEC;
enum FsconfigCommand : unsigned {
  kSetFlag = 0,
  kSetString = 1,
  kSetFd = 5,
  kCmdCreate = 6,
};

struct MountAttr {  // struct mount_attr, MOUNT_ATTR_SIZE_VER0
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};
static_assert(sizeof(MountAttr) == 32, "struct mount_attr VER0 is 32 bytes");

// Drains the fs_context log. Each read(2) returns one message; ENODATA ends the queue.
void ReadFsContext(int fsfd, SysError& e) {
  char buf[1024];
  for (int i = 0; i < 64; i++) {
    ssize_t n = read(fsfd, buf, sizeof buf - 1);
    if (n <= 0) break;
    while (n > 0 && buf[n - 1] == '\n') n--;
    e.fsContext.emplace_back(buf, static_cast<size_t>(n));
  }
}

Napi::Value Fsopen(const Napi::CallbackInfo& info) {
  Args a(info);
  PathArg fsName;
  a.Path(0, "fsName", fsName);
  unsigned flags = a.OptUint32(1, "flags", kFsopenCloexec);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [fsName = std::move(fsName), flags](SysError& e) {
        int fd = static_cast<int>(syscall(__NR_fsopen, fsName.c_str(), flags));
        if (fd < 0) e.Set(errno, "fsopen", fsName.c_str());
        return fd;
      },
      NumberOf);
}

// One fsconfig call; `value`/`aux` as the command needs them.
struct FsconfigCall {
  int fsfd;
  unsigned cmd;
  PathArg key;
  PathArg value;
  int aux;
  bool hasKey;
  bool hasValue;
};

Napi::Value RunFsconfig(Napi::Env env, FsconfigCall call) {
  return Run<true>(
      env,
      [call = std::move(call)](SysError& e) {
        long rc = syscall(__NR_fsconfig, call.fsfd, call.cmd, call.hasKey ? call.key.c_str() : nullptr,
                          call.hasValue ? call.value.c_str() : nullptr, call.aux);
        if (rc != 0) {
          e.Set(errno, "fsconfig", call.hasKey ? call.key.c_str() : nullptr);
          ReadFsContext(call.fsfd, e);
        }
        return Nothing{};
      },
      Undefined);
}

Napi::Value FsconfigSetString(const Napi::CallbackInfo& info) {
  Args a(info);
  FsconfigCall call{};
  call.fsfd = a.Fd(0, "fsfd");
  a.Path(1, "key", call.key);
  a.Path(2, "value", call.value);
  if (!a.ok()) return Napi::Value();
  call.cmd = kSetString;
  call.hasKey = call.hasValue = true;
  return RunFsconfig(a.env(), std::move(call));
}

Napi::Value FsconfigSetFlag(const Napi::CallbackInfo& info) {
  Args a(info);
  FsconfigCall call{};
  call.fsfd = a.Fd(0, "fsfd");
  a.Path(1, "key", call.key);
  if (!a.ok()) return Napi::Value();
  call.cmd = kSetFlag;
  call.hasKey = true;
  return RunFsconfig(a.env(), std::move(call));
}

Napi::Value FsconfigSetFd(const Napi::CallbackInfo& info) {
  Args a(info);
  FsconfigCall call{};
  call.fsfd = a.Fd(0, "fsfd");
  a.Path(1, "key", call.key);
  call.aux = a.Fd(2, "fd");
  if (!a.ok()) return Napi::Value();
  call.cmd = kSetFd;
  call.hasKey = true;
  return RunFsconfig(a.env(), std::move(call));
}

Napi::Value FsconfigCreate(const Napi::CallbackInfo& info) {
  Args a(info);
  FsconfigCall call{};
  call.fsfd = a.Fd(0, "fsfd");
  if (!a.ok()) return Napi::Value();
  call.cmd = kCmdCreate;
  return RunFsconfig(a.env(), std::move(call));
}

Napi::Value Fsmount(const Napi::CallbackInfo& info) {
  Args a(info);
  int fsfd = a.Fd(0, "fsfd");
  unsigned flags = a.OptUint32(1, "flags", kFsmountCloexec);
  unsigned attrFlags = a.OptFlags32(2, "attrFlags", 0);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [fsfd, flags, attrFlags](SysError& e) {
        int fd = static_cast<int>(syscall(__NR_fsmount, fsfd, flags, attrFlags));
        if (fd < 0) {
          e.Set(errno, "fsmount");
          ReadFsContext(fsfd, e);
        }
        return fd;
      },
      NumberOf);
}

Napi::Value MoveMount(const Napi::CallbackInfo& info) {
  Args a(info);
  int fromDirfd = a.Fd(0, "fromDirfd");
  PathArg fromPath;
  a.Path(1, "fromPath", fromPath);
  int toDirfd = a.Fd(2, "toDirfd");
  PathArg toPath;
  a.Path(3, "toPath", toPath);
  unsigned flags = a.OptUint32(4, "flags", 0);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [fromDirfd, fromPath = std::move(fromPath), toDirfd, toPath = std::move(toPath), flags](SysError& e) {
        if (syscall(__NR_move_mount, fromDirfd, fromPath.c_str(), toDirfd, toPath.c_str(), flags) != 0) {
          e.Set(errno, "move_mount", fromPath.c_str(), toPath.c_str());
        }
        return Nothing{};
      },
      Undefined);
}

Napi::Value OpenTree(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg path;
  a.Path(1, "path", path);
  unsigned flags = a.OptUint32(2, "flags", kOpenTreeCloexec);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [dirfd, path = std::move(path), flags](SysError& e) {
        int fd = static_cast<int>(syscall(__NR_open_tree, dirfd, path.c_str(), flags));
        if (fd < 0) e.Set(errno, "open_tree", path.c_str());
        return fd;
      },
      NumberOf);
}

Napi::Value MountSetattr(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg path;
  a.Path(1, "path", path);
  unsigned flags = a.Uint32(2, "flags");
  MountAttr attr{};
  attr.attr_set = a.OptFlags32(3, "attr.attrSet", 0);
  attr.attr_clr = a.OptFlags32(4, "attr.attrClr", 0);
  attr.propagation = a.OptUint32(5, "attr.propagation", 0);
  attr.userns_fd = static_cast<uint64_t>(a.OptInteger(6, "attr.usernsFd", 0, INT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [dirfd, path = std::move(path), flags, attr](SysError& e) {
        MountAttr copy = attr;
        if (syscall(__NR_mount_setattr, dirfd, path.c_str(), flags, &copy, sizeof copy) != 0) {
          e.Set(errno, "mount_setattr", path.c_str());
        }
        return Nothing{};
      },
      Undefined);
}

}  // namespace

void InitNewMount(Napi::Env env, Napi::Object exports) {
  exports.Set("fsopen", Napi::Function::New(env, Fsopen, "fsopen"));
  exports.Set("fsconfigSetString", Napi::Function::New(env, FsconfigSetString, "fsconfigSetString"));
  exports.Set("fsconfigSetFlag", Napi::Function::New(env, FsconfigSetFlag, "fsconfigSetFlag"));
  exports.Set("fsconfigSetFd", Napi::Function::New(env, FsconfigSetFd, "fsconfigSetFd"));
  exports.Set("fsconfigCreate", Napi::Function::New(env, FsconfigCreate, "fsconfigCreate"));
  exports.Set("fsmount", Napi::Function::New(env, Fsmount, "fsmount"));
  exports.Set("moveMount", Napi::Function::New(env, MoveMount, "moveMount"));
  exports.Set("openTree", Napi::Function::New(env, OpenTree, "openTree"));
  exports.Set("mountSetattr", Napi::Function::New(env, MountSetattr, "mountSetattr"));

  Napi::Object constants = exports.Get("constants").As<Napi::Object>();
  Napi::Object fsopen = Napi::Object::New(env);
  SetConst(fsopen, "CLOEXEC", kFsopenCloexec);
  constants.Set("FSOPEN", fsopen);
  Napi::Object fsmount = Napi::Object::New(env);
  SetConst(fsmount, "CLOEXEC", kFsmountCloexec);
  constants.Set("FSMOUNT", fsmount);

  Napi::Object attr = Napi::Object::New(env);
  SetConst(attr, "RDONLY", 0x00000001);
  SetConst(attr, "NOSUID", 0x00000002);
  SetConst(attr, "NODEV", 0x00000004);
  SetConst(attr, "NOEXEC", 0x00000008);
  SetConst(attr, "_ATIME", 0x00000070);
  SetConst(attr, "RELATIME", 0x00000000);
  SetConst(attr, "NOATIME", 0x00000010);
  SetConst(attr, "STRICTATIME", 0x00000020);
  SetConst(attr, "NODIRATIME", 0x00000080);
  SetConst(attr, "IDMAP", 0x00100000);
  SetConst(attr, "NOSYMFOLLOW", 0x00200000);
  constants.Set("MOUNT_ATTR", attr);

  Napi::Object move = Napi::Object::New(env);
  SetConst(move, "F_SYMLINKS", 0x00000001);
  SetConst(move, "F_AUTOMOUNTS", 0x00000002);
  SetConst(move, "F_EMPTY_PATH", 0x00000004);
  SetConst(move, "T_SYMLINKS", 0x00000010);
  SetConst(move, "T_AUTOMOUNTS", 0x00000020);
  SetConst(move, "T_EMPTY_PATH", 0x00000040);
  SetConst(move, "SET_GROUP", 0x00000100);
  SetConst(move, "BENEATH", 0x00000200);  // 6.5
  constants.Set("MOVE_MOUNT", move);

  Napi::Object tree = Napi::Object::New(env);
  SetConst(tree, "CLONE", kOpenTreeClone);
  SetConst(tree, "CLOEXEC", kOpenTreeCloexec);
  constants.Set("OPEN_TREE", tree);
}

}  // namespace gd
