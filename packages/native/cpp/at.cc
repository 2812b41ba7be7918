/*
 * The *at family: openat2, mkdirat, mknodat, symlinkat, linkat, unlinkat, renameat2, fchownat,
 * fchmodat (fchmodat2), utimensat, fstatat, readlinkat and getdents64. These are the calls a layer
 * unpacker makes several times per file, so each has a Sync form that allocates nothing on success,
 * and a Promise form that runs the same lambda on the thread pool.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "async.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#define RENAME_EXCHANGE (1 << 1)
#define RENAME_WHITEOUT (1 << 2)
#endif

namespace gd {
namespace {

constexpr int64_t kModeMax = 07777 | S_IFMT;

template <bool Async>
Napi::Value Openat2(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg path;
  a.Path(1, "path", path);
  uint64_t flags = a.Flags32(2, "how.flags");
  uint64_t mode = static_cast<uint64_t>(a.OptInteger(3, "how.mode", 0, 07777, 0));
  uint64_t resolve = static_cast<uint64_t>(a.OptInteger(4, "how.resolve", 0, UINT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [dirfd, path = std::move(path), flags, mode, resolve](SysError& e) -> int {
        struct open_how how;
        std::memset(&how, 0, sizeof how);
        how.flags = flags;
        how.mode = mode;
        how.resolve = resolve;
        long fd = syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
        if (fd < 0) e.Set(errno, "openat2", path.c_str());
        return static_cast<int>(fd);
      },
      NumberOf);
}

template <bool Async>
Napi::Value Mkdirat(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg name;
  a.Path(1, "name", name);
  mode_t mode = static_cast<mode_t>(a.Integer(2, "mode", 0, 07777));
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [dirfd, name = std::move(name), mode](SysError& e) {
        if (mkdirat(dirfd, name.c_str(), mode) != 0) e.Set(errno, "mkdirat", name.c_str());
        return Nothing{};
      },
      Undefined);
}

template <bool Async>
Napi::Value Mknodat(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg name;
  a.Path(1, "name", name);
  mode_t mode = static_cast<mode_t>(a.Integer(2, "mode", 0, kModeMax));
  uint32_t major = a.Uint32(3, "major");
  uint32_t minor = a.Uint32(4, "minor");
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [dirfd, name = std::move(name), mode, major, minor](SysError& e) {
        if (mknodat(dirfd, name.c_str(), mode, makedev(major, minor)) != 0) e.Set(errno, "mknodat", name.c_str());
        return Nothing{};
      },
      Undefined);
}

template <bool Async>
Napi::Value Symlinkat(const Napi::CallbackInfo& info) {
  Args a(info);
  PathArg target;
  a.Path(0, "target", target);
  int dirfd = a.Fd(1, "dirfd");
  PathArg name;
  a.Path(2, "name", name);
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [target = std::move(target), dirfd, name = std::move(name)](SysError& e) {
        // Node reports symlink(target, path) failures as "symlink 'target' -> 'path'".
        if (symlinkat(target.c_str(), dirfd, name.c_str()) != 0) e.Set(errno, "symlinkat", target.c_str(), name.c_str());
        return Nothing{};
      },
      Undefined);
}

template <bool Async>
Napi::Value Linkat(const Napi::CallbackInfo& info) {
  Args a(info);
  int olddirfd = a.Fd(0, "oldDirfd");
  PathArg oldname;
  a.Path(1, "oldName", oldname);
  int newdirfd = a.Fd(2, "newDirfd");
  PathArg newname;
  a.Path(3, "newName", newname);
  int flags = static_cast<int>(a.OptInteger(4, "flags", 0, INT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [olddirfd, oldname = std::move(oldname), newdirfd, newname = std::move(newname), flags](SysError& e) {
        if (linkat(olddirfd, oldname.c_str(), newdirfd, newname.c_str(), flags) != 0) {
          e.Set(errno, "linkat", oldname.c_str(), newname.c_str());
        }
        return Nothing{};
      },
      Undefined);
}

template <bool Async>
Napi::Value Unlinkat(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg name;
  a.Path(1, "name", name);
  int flags = static_cast<int>(a.OptInteger(2, "flags", 0, INT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [dirfd, name = std::move(name), flags](SysError& e) {
        if (unlinkat(dirfd, name.c_str(), flags) != 0) e.Set(errno, "unlinkat", name.c_str());
        return Nothing{};
      },
      Undefined);
}

template <bool Async>
Napi::Value Renameat2(const Napi::CallbackInfo& info) {
  Args a(info);
  int olddirfd = a.Fd(0, "oldDirfd");
  PathArg oldname;
  a.Path(1, "oldName", oldname);
  int newdirfd = a.Fd(2, "newDirfd");
  PathArg newname;
  a.Path(3, "newName", newname);
  unsigned flags = a.OptUint32(4, "flags", 0);
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [olddirfd, oldname = std::move(oldname), newdirfd, newname = std::move(newname), flags](SysError& e) {
        if (syscall(SYS_renameat2, olddirfd, oldname.c_str(), newdirfd, newname.c_str(), flags) != 0) {
          e.Set(errno, "renameat2", oldname.c_str(), newname.c_str());
        }
        return Nothing{};
      },
      Undefined);
}

template <bool Async>
Napi::Value Fchownat(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg name;
  a.Path(1, "name", name);
  // -1 leaves the owner (or group) unchanged, as chown(2) says.
  uid_t uid = static_cast<uid_t>(a.Integer(2, "uid", -1, UINT32_MAX));
  gid_t gid = static_cast<gid_t>(a.Integer(3, "gid", -1, UINT32_MAX));
  int flags = static_cast<int>(a.OptInteger(4, "flags", 0, INT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [dirfd, name = std::move(name), uid, gid, flags](SysError& e) {
        if (fchownat(dirfd, name.c_str(), uid, gid, flags) != 0) e.Set(errno, "fchownat", name.c_str());
        return Nothing{};
      },
      Undefined);
}

// fchmodat2 (6.6) is the only way to honour AT_SYMLINK_NOFOLLOW without /proc; remember once that
// the kernel lacks it and use glibc's fchmodat (which emulates the flag through O_PATH) from then on.
std::atomic<bool> haveFchmodat2{true};

int DoFchmodat(int dirfd, const char* name, mode_t mode, int flags) {
  if (flags == 0) return static_cast<int>(syscall(SYS_fchmodat, dirfd, name, mode));
  if (haveFchmodat2.load(std::memory_order_relaxed)) {
    long rc = syscall(SYS_fchmodat2, dirfd, name, mode, flags);
    if (rc == 0 || errno != ENOSYS) return static_cast<int>(rc);
    haveFchmodat2.store(false, std::memory_order_relaxed);
  }
  return fchmodat(dirfd, name, mode, flags);
}

template <bool Async>
Napi::Value Fchmodat(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg name;
  a.Path(1, "name", name);
  mode_t mode = static_cast<mode_t>(a.Integer(2, "mode", 0, 07777));
  int flags = static_cast<int>(a.OptInteger(3, "flags", 0, INT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [dirfd, name = std::move(name), mode, flags](SysError& e) {
        if (DoFchmodat(dirfd, name.c_str(), mode, flags) != 0) e.Set(errno, "fchmodat", name.c_str());
        return Nothing{};
      },
      Undefined);
}

template <bool Async>
Napi::Value Utimensat(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg name;
  a.Path(1, "name", name);
  struct timespec times[2];
  // Seconds may be negative (before 1970); nanoseconds also take UTIME_NOW / UTIME_OMIT.
  times[0].tv_sec = static_cast<time_t>(a.Integer(2, "atime.sec", INT64_MIN / 2, INT64_MAX / 2));
  times[0].tv_nsec = static_cast<long>(a.Integer(3, "atime.nsec", 0, UTIME_NOW > UTIME_OMIT ? UTIME_NOW : UTIME_OMIT));
  times[1].tv_sec = static_cast<time_t>(a.Integer(4, "mtime.sec", INT64_MIN / 2, INT64_MAX / 2));
  times[1].tv_nsec = static_cast<long>(a.Integer(5, "mtime.nsec", 0, UTIME_NOW > UTIME_OMIT ? UTIME_NOW : UTIME_OMIT));
  int flags = static_cast<int>(a.OptInteger(6, "flags", 0, INT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [dirfd, name = std::move(name), t0 = times[0], t1 = times[1], flags](SysError& e) {
        struct timespec ts[2] = {t0, t1};
        if (utimensat(dirfd, name.c_str(), ts, flags) != 0) e.Set(errno, "utimensat", name.c_str());
        return Nothing{};
      },
      Undefined);
}

// fstatat fills 20 doubles in this order; src/at.ts turns them into a NativeStat.
constexpr size_t kStatFields = 20;

void FillStat(const struct stat& st, double* out) {
  out[0] = static_cast<double>(st.st_dev);
  out[1] = static_cast<double>(st.st_ino);
  out[2] = st.st_mode;
  out[3] = static_cast<double>(st.st_nlink);
  out[4] = st.st_uid;
  out[5] = st.st_gid;
  out[6] = static_cast<double>(st.st_rdev);
  out[7] = major(st.st_rdev);
  out[8] = minor(st.st_rdev);
  out[9] = static_cast<double>(st.st_size);
  out[10] = static_cast<double>(st.st_blocks);
  out[11] = static_cast<double>(st.st_atim.tv_sec);
  out[12] = static_cast<double>(st.st_atim.tv_nsec);
  out[13] = static_cast<double>(st.st_mtim.tv_sec);
  out[14] = static_cast<double>(st.st_mtim.tv_nsec);
  out[15] = static_cast<double>(st.st_ctim.tv_sec);
  out[16] = static_cast<double>(st.st_ctim.tv_nsec);
  out[17] = static_cast<double>(st.st_blksize);
  out[18] = 0;
  out[19] = 0;
}

// Sync form: fstatatSync(dirfd, name, flags, out: Float64Array(20)) writes into `out` (reused by
// the caller, so a stat costs no allocation). Async form: resolves to a new Float64Array.
Napi::Value FstatatSync(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg name;
  a.Path(1, "name", name);
  int flags = static_cast<int>(a.OptInteger(2, "flags", 0, INT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  napi_value outValue = a.At(3);
  bool isTyped = false;
  if (outValue != nullptr) napi_is_typedarray(a.env(), outValue, &isTyped);
  napi_typedarray_type ttype = napi_int8_array;
  size_t length = 0;
  void* data = nullptr;
  if (isTyped) napi_get_typedarray_info(a.env(), outValue, &ttype, &length, &data, nullptr, nullptr);
  if (!isTyped || ttype != napi_float64_array || length < kStatFields) {
    return ThrowArgType(a.env(), "out", "a Float64Array of 20 elements", outValue);
  }
  struct stat st;
  if (fstatat(dirfd, name.c_str(), &st, flags) != 0) {
    SysError e;
    e.Set(errno, "fstatat", name.c_str());
    return ThrowSysError(a.env(), e);
  }
  FillStat(st, static_cast<double*>(data));
  return a.env().Undefined();
}

struct StatResult {
  double values[kStatFields];
};

Napi::Value FstatatAsync(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg name;
  a.Path(1, "name", name);
  int flags = static_cast<int>(a.OptInteger(2, "flags", 0, INT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [dirfd, name = std::move(name), flags](SysError& e) {
        StatResult r{};
        struct stat st;
        if (fstatat(dirfd, name.c_str(), &st, flags) != 0) e.Set(errno, "fstatat", name.c_str());
        else FillStat(st, r.values);
        return r;
      },
      [](Napi::Env env, StatResult& r) -> Napi::Value {
        Napi::Float64Array out = Napi::Float64Array::New(env, kStatFields);
        std::memcpy(out.Data(), r.values, sizeof r.values);
        return out;
      });
}

// readlinkat into a stack buffer; a target that fills it is read again into a larger one.
template <typename Out>
bool ReadLink(int dirfd, const char* name, Out& out, SysError& e) {
  char stackBuf[4096];
  ssize_t n = readlinkat(dirfd, name, stackBuf, sizeof stackBuf);
  if (n < 0) {
    e.Set(errno, "readlinkat", name);
    return false;
  }
  if (static_cast<size_t>(n) < sizeof stackBuf) {
    out.assign(stackBuf, static_cast<size_t>(n));
    return true;
  }
  std::vector<char> heap(sizeof stackBuf * 2);
  for (;;) {
    n = readlinkat(dirfd, name, heap.data(), heap.size());
    if (n < 0) {
      e.Set(errno, "readlinkat", name);
      return false;
    }
    if (static_cast<size_t>(n) < heap.size()) break;
    heap.resize(heap.size() * 2);
  }
  out.assign(heap.data(), static_cast<size_t>(n));
  return true;
}

Napi::Value ReadlinkatSync(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg name;
  a.Path(1, "name", name);
  if (!a.ok()) return Napi::Value();
  char stackBuf[4096];
  ssize_t n = readlinkat(dirfd, name.c_str(), stackBuf, sizeof stackBuf);
  if (n >= 0 && static_cast<size_t>(n) < sizeof stackBuf) {
    return Napi::String::New(a.env(), stackBuf, static_cast<size_t>(n));
  }
  SysError e;
  std::string target;
  if (!ReadLink(dirfd, name.c_str(), target, e)) return ThrowSysError(a.env(), e);
  return Napi::String::New(a.env(), target);
}

Napi::Value ReadlinkatAsync(const Napi::CallbackInfo& info) {
  Args a(info);
  int dirfd = a.Fd(0, "dirfd");
  PathArg name;
  a.Path(1, "name", name);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [dirfd, name = std::move(name)](SysError& e) {
        std::string target;
        ReadLink(dirfd, name.c_str(), target, e);
        return target;
      },
      [](Napi::Env env, std::string& target) -> Napi::Value { return Napi::String::New(env, target); });
}

// getdents64 until the end of the directory. The entries come back packed in one Buffer as
// [d_type byte][name bytes][NUL] (src/at.ts splits it), which costs one JS allocation instead of
// two per entry. "." and ".." are left out.
struct linux_dirent64 {
  ino64_t d_ino;
  off64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

bool ReadDirents(int fd, std::string& packed, SysError& e) {
  alignas(8) char buf[32768];
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n < 0) {
      e.Set(errno, "getdents64");
      return false;
    }
    if (n == 0) return true;
    for (long pos = 0; pos < n;) {
      auto* d = reinterpret_cast<linux_dirent64*>(buf + pos);
      pos += d->d_reclen;
      const char* nm = d->d_name;
      if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0'))) continue;
      packed.push_back(static_cast<char>(d->d_type));
      packed.append(nm, std::strlen(nm) + 1);
    }
  }
}

template <bool Async>
Napi::Value Getdents(const Napi::CallbackInfo& info) {
  Args a(info);
  int fd = a.Fd(0, "dirfd");
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [fd](SysError& e) {
        std::string packed;
        ReadDirents(fd, packed, e);
        return packed;
      },
      [](Napi::Env env, std::string& packed) -> Napi::Value {
        return Napi::Buffer<char>::Copy(env, packed.data(), packed.size());
      });
}

}  // namespace

void InitAt(Napi::Env env, Napi::Object exports) {
  ExportBoth<Openat2<false>, Openat2<true>>(env, exports, "openat2");
  ExportBoth<Mkdirat<false>, Mkdirat<true>>(env, exports, "mkdirat");
  ExportBoth<Mknodat<false>, Mknodat<true>>(env, exports, "mknodat");
  ExportBoth<Symlinkat<false>, Symlinkat<true>>(env, exports, "symlinkat");
  ExportBoth<Linkat<false>, Linkat<true>>(env, exports, "linkat");
  ExportBoth<Unlinkat<false>, Unlinkat<true>>(env, exports, "unlinkat");
  ExportBoth<Renameat2<false>, Renameat2<true>>(env, exports, "renameat2");
  ExportBoth<Fchownat<false>, Fchownat<true>>(env, exports, "fchownat");
  ExportBoth<Fchmodat<false>, Fchmodat<true>>(env, exports, "fchmodat");
  ExportBoth<Utimensat<false>, Utimensat<true>>(env, exports, "utimensat");
  ExportBoth<FstatatSync, FstatatAsync>(env, exports, "fstatat");
  ExportBoth<ReadlinkatSync, ReadlinkatAsync>(env, exports, "readlinkat");
  ExportBoth<Getdents<false>, Getdents<true>>(env, exports, "getdents");

  Napi::Object constants = exports.Get("constants").As<Napi::Object>();
  Napi::Object o = Napi::Object::New(env);
  SetConst(o, "RDONLY", O_RDONLY);
  SetConst(o, "WRONLY", O_WRONLY);
  SetConst(o, "RDWR", O_RDWR);
  SetConst(o, "CREAT", O_CREAT);
  SetConst(o, "EXCL", O_EXCL);
  SetConst(o, "TRUNC", O_TRUNC);
  SetConst(o, "APPEND", O_APPEND);
  SetConst(o, "NOFOLLOW", O_NOFOLLOW);
  SetConst(o, "DIRECTORY", O_DIRECTORY);
  SetConst(o, "CLOEXEC", O_CLOEXEC);
  SetConst(o, "PATH", O_PATH);
  SetConst(o, "NONBLOCK", O_NONBLOCK);
  SetConst(o, "NOCTTY", O_NOCTTY);
  SetConst(o, "TMPFILE", O_TMPFILE);
  SetConst(o, "NOATIME", O_NOATIME);
  SetConst(o, "DIRECT", O_DIRECT);
  SetConst(o, "SYNC", O_SYNC);
  SetConst(o, "DSYNC", O_DSYNC);
  SetConst(o, "LARGEFILE", O_LARGEFILE);
  constants.Set("O", o);

  Napi::Object resolve = Napi::Object::New(env);
  SetConst(resolve, "NO_XDEV", RESOLVE_NO_XDEV);
  SetConst(resolve, "NO_MAGICLINKS", RESOLVE_NO_MAGICLINKS);
  SetConst(resolve, "NO_SYMLINKS", RESOLVE_NO_SYMLINKS);
  SetConst(resolve, "BENEATH", RESOLVE_BENEATH);
  SetConst(resolve, "IN_ROOT", RESOLVE_IN_ROOT);
  SetConst(resolve, "CACHED", RESOLVE_CACHED);
  constants.Set("RESOLVE", resolve);

  Napi::Object at = Napi::Object::New(env);
  SetConst(at, "FDCWD", AT_FDCWD);
  SetConst(at, "SYMLINK_NOFOLLOW", AT_SYMLINK_NOFOLLOW);
  SetConst(at, "SYMLINK_FOLLOW", AT_SYMLINK_FOLLOW);
  SetConst(at, "REMOVEDIR", AT_REMOVEDIR);
  SetConst(at, "EMPTY_PATH", AT_EMPTY_PATH);
  at.Set("RECURSIVE", 0x8000);  // AT_RECURSIVE (linux/fcntl.h), for mount_setattr and open_tree
  SetConst(at, "NO_AUTOMOUNT", AT_NO_AUTOMOUNT);
  constants.Set("AT", at);

  Napi::Object s = Napi::Object::New(env);
  SetConst(s, "IFMT", S_IFMT);
  SetConst(s, "IFREG", S_IFREG);
  SetConst(s, "IFDIR", S_IFDIR);
  SetConst(s, "IFLNK", S_IFLNK);
  SetConst(s, "IFCHR", S_IFCHR);
  SetConst(s, "IFBLK", S_IFBLK);
  SetConst(s, "IFIFO", S_IFIFO);
  SetConst(s, "IFSOCK", S_IFSOCK);
  SetConst(s, "ISUID", S_ISUID);
  SetConst(s, "ISGID", S_ISGID);
  SetConst(s, "ISVTX", S_ISVTX);
  constants.Set("S", s);

  Napi::Object rename = Napi::Object::New(env);
  SetConst(rename, "NOREPLACE", RENAME_NOREPLACE);
  SetConst(rename, "EXCHANGE", RENAME_EXCHANGE);
  SetConst(rename, "WHITEOUT", RENAME_WHITEOUT);
  constants.Set("RENAME", rename);

  Napi::Object dt = Napi::Object::New(env);
  SetConst(dt, "UNKNOWN", DT_UNKNOWN);
  SetConst(dt, "FIFO", DT_FIFO);
  SetConst(dt, "CHR", DT_CHR);
  SetConst(dt, "DIR", DT_DIR);
  SetConst(dt, "BLK", DT_BLK);
  SetConst(dt, "REG", DT_REG);
  SetConst(dt, "LNK", DT_LNK);
  SetConst(dt, "SOCK", DT_SOCK);
  SetConst(dt, "WHT", DT_WHT);
  constants.Set("DT", dt);

  Napi::Object utime = Napi::Object::New(env);
  SetConst(utime, "NOW", UTIME_NOW);
  SetConst(utime, "OMIT", UTIME_OMIT);
  constants.Set("UTIME", utime);
}

}  // namespace gd
