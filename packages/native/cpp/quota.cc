/*
 * Project quotas: the per-inode project id and PROJINHERIT flag (FS_IOC_FSGETXATTR /
 * FS_IOC_FSSETXATTR), and the quota records themselves through quotactl(2) on a block device path
 * or quotactl_fd(2) (5.14+) on any fd of the filesystem. Limits are exchanged in bytes; the
 * kernel's if_dqblk counts space limits in 1 KiB blocks, so byte limits are rounded up to 1 KiB.
 */
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/quota.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "args.h"
#include "async.h"

#ifndef SYS_quotactl_fd
#define SYS_quotactl_fd 443
#endif

namespace gd {
namespace {

constexpr int64_t kMaxSafe = 9007199254740991LL;

Napi::Value FsGetXattr(const Napi::CallbackInfo& info) {
  Args a(info);
  int fd = a.Fd(0, "fd");
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [fd](SysError& e) {
        struct fsxattr attr;
        std::memset(&attr, 0, sizeof attr);
        if (ioctl(fd, FS_IOC_FSGETXATTR, &attr) != 0) e.Set(errno, "ioctl(FS_IOC_FSGETXATTR)");
        return attr;
      },
      [](Napi::Env env, struct fsxattr& attr) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("xflags", Napi::Number::New(env, attr.fsx_xflags));
        out.Set("extsize", Napi::Number::New(env, attr.fsx_extsize));
        out.Set("nextents", Napi::Number::New(env, attr.fsx_nextents));
        out.Set("projid", Napi::Number::New(env, attr.fsx_projid));
        out.Set("cowextsize", Napi::Number::New(env, attr.fsx_cowextsize));
        return out;
      });
}

// Read-modify-write: only the fields given (hasXflags/hasProjid) change.
Napi::Value FsSetXattr(const Napi::CallbackInfo& info) {
  Args a(info);
  int fd = a.Fd(0, "fd");
  bool hasXflags = !a.IsNullish(1);
  uint32_t xflags = a.OptFlags32(1, "attr.xflags", 0);
  bool hasProjid = !a.IsNullish(2);
  uint32_t projid = a.OptUint32(2, "attr.projid", 0);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [=](SysError& e) {
        struct fsxattr attr;
        std::memset(&attr, 0, sizeof attr);
        if (ioctl(fd, FS_IOC_FSGETXATTR, &attr) != 0) {
          e.Set(errno, "ioctl(FS_IOC_FSGETXATTR)");
          return Nothing{};
        }
        if (hasXflags) attr.fsx_xflags = xflags;
        if (hasProjid) attr.fsx_projid = projid;
        if (ioctl(fd, FS_IOC_FSSETXATTR, &attr) != 0) e.Set(errno, "ioctl(FS_IOC_FSSETXATTR)");
        return Nothing{};
      },
      Undefined);
}

// A quotactl target: a block device path (quotactl) or an fd on the filesystem (quotactl_fd).
struct QuotaTarget {
  bool isFd = false;
  int fd = -1;
  PathArg device;

  bool Read(Args& a, size_t i) {
    napi_valuetype type = napi_undefined;
    if (a.At(i) != nullptr) napi_typeof(a.env(), a.At(i), &type);
    if (type == napi_number) {
      isFd = true;
      fd = a.Fd(i, "target");
    } else {
      a.Path(i, "target", device);
    }
    return a.ok();
  }

  // Returns 0 or -1 with errno, and names the syscall for errors.
  int Call(int cmd, int type, uint32_t id, void* addr, SysError& e) const {
    long rc = isFd ? syscall(SYS_quotactl_fd, static_cast<unsigned>(fd), static_cast<unsigned>(QCMD(cmd, type)), id, addr)
                   : syscall(SYS_quotactl, QCMD(cmd, type), device.c_str(), id, addr);
    if (rc != 0) {
      const char* name = isFd ? "quotactl_fd" : "quotactl";
      e.Set(errno, name, isFd ? nullptr : device.c_str());
    }
    return static_cast<int>(rc);
  }
};

constexpr double kBlock = QIF_DQBLKSIZE;

Napi::Value QuotaGet(const Napi::CallbackInfo& info) {
  Args a(info);
  QuotaTarget target;
  target.Read(a, 0);
  int type = static_cast<int>(a.Integer(1, "type", 0, 2));
  uint32_t id = a.Uint32(2, "id");
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [target = std::move(target), type, id](SysError& e) {
        struct if_dqblk q;
        std::memset(&q, 0, sizeof q);
        target.Call(Q_GETQUOTA, type, id, &q, e);
        return q;
      },
      [](Napi::Env env, struct if_dqblk& q) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("blockHardLimit", Napi::Number::New(env, static_cast<double>(q.dqb_bhardlimit) * kBlock));
        out.Set("blockSoftLimit", Napi::Number::New(env, static_cast<double>(q.dqb_bsoftlimit) * kBlock));
        out.Set("inodeHardLimit", Napi::Number::New(env, static_cast<double>(q.dqb_ihardlimit)));
        out.Set("inodeSoftLimit", Napi::Number::New(env, static_cast<double>(q.dqb_isoftlimit)));
        out.Set("spaceUsed", Napi::Number::New(env, static_cast<double>(q.dqb_curspace)));
        out.Set("inodesUsed", Napi::Number::New(env, static_cast<double>(q.dqb_curinodes)));
        return out;
      });
}

// Sets only the limits given (negative = leave as is): the record is read first, then written
// back with the block and/or inode limit pair marked valid.
Napi::Value QuotaSet(const Napi::CallbackInfo& info) {
  Args a(info);
  QuotaTarget target;
  target.Read(a, 0);
  int type = static_cast<int>(a.Integer(1, "type", 0, 2));
  uint32_t id = a.Uint32(2, "id");
  int64_t bhard = a.OptInteger(3, "limits.blockHardLimit", 0, kMaxSafe, -1);
  int64_t bsoft = a.OptInteger(4, "limits.blockSoftLimit", 0, kMaxSafe, -1);
  int64_t ihard = a.OptInteger(5, "limits.inodeHardLimit", 0, kMaxSafe, -1);
  int64_t isoft = a.OptInteger(6, "limits.inodeSoftLimit", 0, kMaxSafe, -1);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [target = std::move(target), type, id, bhard, bsoft, ihard, isoft](SysError& e) {
        struct if_dqblk q;
        std::memset(&q, 0, sizeof q);
        // Read first so that the limits not given keep their values. xfs has no record for an id
        // that has neither usage nor limits yet and answers ENOENT: that id starts from zero.
        if (target.Call(Q_GETQUOTA, type, id, &q, e) != 0) {
          if (e.err != ENOENT) return Nothing{};
          e = SysError{};
          std::memset(&q, 0, sizeof q);
        }
        auto blocks = [](int64_t bytes) { return static_cast<uint64_t>((bytes + QIF_DQBLKSIZE - 1) / QIF_DQBLKSIZE); };
        uint32_t valid = 0;
        if (bhard >= 0) q.dqb_bhardlimit = blocks(bhard);
        if (bsoft >= 0) q.dqb_bsoftlimit = blocks(bsoft);
        if (bhard >= 0 || bsoft >= 0) valid |= QIF_BLIMITS;
        if (ihard >= 0) q.dqb_ihardlimit = static_cast<uint64_t>(ihard);
        if (isoft >= 0) q.dqb_isoftlimit = static_cast<uint64_t>(isoft);
        if (ihard >= 0 || isoft >= 0) valid |= QIF_ILIMITS;
        q.dqb_valid = valid;
        if (valid != 0) target.Call(Q_SETQUOTA, type, id, &q, e);
        return Nothing{};
      },
      Undefined);
}

Napi::Value QuotaFormat(const Napi::CallbackInfo& info) {
  Args a(info);
  QuotaTarget target;
  target.Read(a, 0);
  int type = static_cast<int>(a.Integer(1, "type", 0, 2));
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [target = std::move(target), type](SysError& e) {
        uint32_t fmt = 0;
        target.Call(Q_GETFMT, type, 0, &fmt, e);
        return static_cast<double>(fmt);
      },
      [](Napi::Env env, double& fmt) -> Napi::Value { return Napi::Number::New(env, fmt); });
}

}  // namespace

void InitQuota(Napi::Env env, Napi::Object exports) {
  exports.Set("fsGetXattr", Napi::Function::New(env, FsGetXattr, "fsGetXattr"));
  exports.Set("fsSetXattr", Napi::Function::New(env, FsSetXattr, "fsSetXattr"));
  exports.Set("quotaGet", Napi::Function::New(env, QuotaGet, "quotaGet"));
  exports.Set("quotaSet", Napi::Function::New(env, QuotaSet, "quotaSet"));
  exports.Set("quotaFormat", Napi::Function::New(env, QuotaFormat, "quotaFormat"));

  Napi::Object constants = exports.Get("constants").As<Napi::Object>();
  Napi::Object fmt = Napi::Object::New(env);
  SetConst(fmt, "VFS_OLD", QFMT_VFS_OLD);
  SetConst(fmt, "VFS_V0", QFMT_VFS_V0);
  SetConst(fmt, "OCFS2", QFMT_OCFS2);
  SetConst(fmt, "VFS_V1", QFMT_VFS_V1);
  constants.Set("QFMT", fmt);
}

}  // namespace gd
