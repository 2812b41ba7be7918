/*
 * Whole-file and whole-filesystem calls: mknod by path, syncfs, FICLONE (reflink) and
 * copy_file_range. The last three may take long (a full sync, a large copy), so they are
 * Promise-only and run on the thread pool.
 */
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>

#include "args.h"
#include "async.h"

namespace gd {
namespace {

template <bool Async>
Napi::Value Mknod(const Napi::CallbackInfo& info) {
  Args a(info);
  PathArg path;
  a.Path(0, "path", path);
  mode_t mode = static_cast<mode_t>(a.Integer(1, "mode", 0, 07777 | S_IFMT));
  uint32_t major = a.Uint32(2, "major");
  uint32_t minor = a.Uint32(3, "minor");
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [path = std::move(path), mode, major, minor](SysError& e) {
        if (mknod(path.c_str(), mode, makedev(major, minor)) != 0) e.Set(errno, "mknod", path.c_str());
        return Nothing{};
      },
      Undefined);
}

Napi::Value Syncfs(const Napi::CallbackInfo& info) {
  Args a(info);
  int fd = a.Fd(0, "fd");
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [fd](SysError& e) {
        if (syncfs(fd) != 0) e.Set(errno, "syncfs");
        return Nothing{};
      },
      Undefined);
}

Napi::Value Ficlone(const Napi::CallbackInfo& info) {
  Args a(info);
  int dest = a.Fd(0, "destFd");
  int src = a.Fd(1, "srcFd");
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [dest, src](SysError& e) {
        if (ioctl(dest, FICLONE, src) != 0) e.Set(errno, "ioctl(FICLONE)");
        return Nothing{};
      },
      Undefined);
}

constexpr int64_t kMaxSafe = 9007199254740991LL;  // Number.MAX_SAFE_INTEGER

Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  Args a(info);
  int src = a.Fd(0, "srcFd");
  int dest = a.Fd(1, "destFd");
  int64_t length = a.Integer(2, "length", 0, kMaxSafe);
  // An omitted (or null) offset means "the fd's own file offset, which the call advances".
  bool hasSrcOff = !a.IsNullish(3);
  int64_t srcOff = a.OptInteger(3, "srcOffset", 0, kMaxSafe, 0);
  bool hasDestOff = !a.IsNullish(4);
  int64_t destOff = a.OptInteger(4, "destOffset", 0, kMaxSafe, 0);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [=](SysError& e) mutable -> double {
        loff_t so = srcOff;
        loff_t dO = destOff;
        ssize_t n = copy_file_range(src, hasSrcOff ? &so : nullptr, dest, hasDestOff ? &dO : nullptr,
                                    static_cast<size_t>(length), 0);
        if (n < 0) e.Set(errno, "copy_file_range");
        return static_cast<double>(n);
      },
      [](Napi::Env env, double& n) -> Napi::Value { return Napi::Number::New(env, n); });
}

}  // namespace

void InitFiles(Napi::Env env, Napi::Object exports) {
  ExportBoth<Mknod<false>, Mknod<true>>(env, exports, "mknod");
  exports.Set("syncfs", Napi::Function::New(env, Syncfs, "syncfs"));
  exports.Set("ficlone", Napi::Function::New(env, Ficlone, "ficlone"));
  exports.Set("copyFileRange", Napi::Function::New(env, CopyFileRange, "copyFileRange"));

  Napi::Object constants = exports.Get("constants").As<Napi::Object>();
  Napi::Object x = Napi::Object::New(env);
  SetConst(x, "REALTIME", FS_XFLAG_REALTIME);
  SetConst(x, "PREALLOC", FS_XFLAG_PREALLOC);
  SetConst(x, "IMMUTABLE", FS_XFLAG_IMMUTABLE);
  SetConst(x, "APPEND", FS_XFLAG_APPEND);
  SetConst(x, "SYNC", FS_XFLAG_SYNC);
  SetConst(x, "NOATIME", FS_XFLAG_NOATIME);
  SetConst(x, "NODUMP", FS_XFLAG_NODUMP);
  SetConst(x, "RTINHERIT", FS_XFLAG_RTINHERIT);
  SetConst(x, "PROJINHERIT", FS_XFLAG_PROJINHERIT);
  SetConst(x, "NOSYMLINKS", FS_XFLAG_NOSYMLINKS);
  SetConst(x, "EXTSIZE", FS_XFLAG_EXTSIZE);
  SetConst(x, "EXTSZINHERIT", FS_XFLAG_EXTSZINHERIT);
  SetConst(x, "NODEFRAG", FS_XFLAG_NODEFRAG);
  SetConst(x, "FILESTREAM", FS_XFLAG_FILESTREAM);
  SetConst(x, "DAX", FS_XFLAG_DAX);
  SetConst(x, "COWEXTSIZE", FS_XFLAG_COWEXTSIZE);
  SetConst(x, "HASATTR", FS_XFLAG_HASATTR);
  constants.Set("FS_XFLAG", x);
}

}  // namespace gd
