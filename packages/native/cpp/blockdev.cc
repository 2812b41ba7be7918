/*
 * Block device ioctls that are not a loop device's own: BLKDISCARD (tell the device a byte range
 * is unused - a thin device hands its blocks back to the pool, a loop device punches a hole in its
 * file) and BLKGETSIZE64. Both Promise-based: a discard of a large device can take a while.
 */
#include <linux/fs.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdint>

#include "args.h"
#include "async.h"

namespace gd {
namespace {

constexpr int64_t kMaxSafe = 9007199254740991LL;

Napi::Value BlkDiscard(const Napi::CallbackInfo& info) {
  Args a(info);
  int fd = a.Fd(0, "fd");
  int64_t offset = a.Integer(1, "offset", 0, kMaxSafe);
  int64_t length = a.Integer(2, "length", 0, kMaxSafe);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [fd, offset, length](SysError& e) {
        uint64_t range[2] = {static_cast<uint64_t>(offset), static_cast<uint64_t>(length)};
        if (ioctl(fd, BLKDISCARD, &range) != 0) e.Set(errno, "ioctl(BLKDISCARD)");
        return Nothing{};
      },
      Undefined);
}

Napi::Value BlkGetSize64(const Napi::CallbackInfo& info) {
  Args a(info);
  int fd = a.Fd(0, "fd");
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [fd](SysError& e) {
        uint64_t size = 0;
        if (ioctl(fd, BLKGETSIZE64, &size) != 0) e.Set(errno, "ioctl(BLKGETSIZE64)");
        return static_cast<double>(size);
      },
      [](Napi::Env env, double& size) -> Napi::Value { return Napi::Number::New(env, size); });
}

}  // namespace

void InitBlockdev(Napi::Env env, Napi::Object exports) {
  exports.Set("blkDiscard", Napi::Function::New(env, BlkDiscard, "blkDiscard"));
  exports.Set("blkGetSize64", Napi::Function::New(env, BlkGetSize64, "blkGetSize64"));
}

}  // namespace gd
