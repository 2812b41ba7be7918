/*
 * Extended attributes by path (l*, never following a final symlink) and by fd (f*). Values are
 * Buffers, byte for byte: security.capability and POSIX ACLs are binary. Reads go through a stack
 * buffer first so that the common small value costs one syscall and one Buffer.
 */
#include <sys/xattr.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "args.h"
#include "async.h"

namespace gd {
namespace {

// A path (l* calls) or an fd (f* calls): one template serves both families.
struct ByPath {
  PathArg path;
  ssize_t Get(const char* name, void* buf, size_t size) const { return lgetxattr(path.c_str(), name, buf, size); }
  int Set(const char* name, const void* v, size_t size, int flags) const {
    return lsetxattr(path.c_str(), name, v, size, flags);
  }
  ssize_t List(char* buf, size_t size) const { return llistxattr(path.c_str(), buf, size); }
  int Remove(const char* name) const { return lremovexattr(path.c_str(), name); }
  const char* Label() const { return path.c_str(); }
  static constexpr const char* kGet = "lgetxattr";
  static constexpr const char* kSet = "lsetxattr";
  static constexpr const char* kList = "llistxattr";
  static constexpr const char* kRemove = "lremovexattr";
  bool Read(Args& a) {
    a.Path(0, "path", path);
    return a.ok();
  }
};

struct ByFd {
  int fd = -1;
  ssize_t Get(const char* name, void* buf, size_t size) const { return fgetxattr(fd, name, buf, size); }
  int Set(const char* name, const void* v, size_t size, int flags) const { return fsetxattr(fd, name, v, size, flags); }
  ssize_t List(char* buf, size_t size) const { return flistxattr(fd, buf, size); }
  int Remove(const char* name) const { return fremovexattr(fd, name); }
  // Node's fs errors of fd calls carry no path; neither do ours.
  const char* Label() const { return nullptr; }
  static constexpr const char* kGet = "fgetxattr";
  static constexpr const char* kSet = "fsetxattr";
  static constexpr const char* kList = "flistxattr";
  static constexpr const char* kRemove = "fremovexattr";
  bool Read(Args& a) {
    fd = a.Fd(0, "fd");
    return a.ok();
  }
};

// Reads a value or a name list of unknown size: asks the size, reads, and starts over when the
// attribute grew in between (ERANGE).
template <typename Call>
bool ReadGrowing(Call call, std::vector<char>& out, int& err) {
  for (;;) {
    ssize_t size = call(nullptr, 0);
    if (size < 0) {
      err = errno;
      return false;
    }
    out.resize(static_cast<size_t>(size));
    if (size == 0) return true;
    ssize_t n = call(out.data(), out.size());
    if (n >= 0) {
      out.resize(static_cast<size_t>(n));
      return true;
    }
    if (errno != ERANGE) {
      err = errno;
      return false;
    }
  }
}

// XATTR_SIZE_MAX is 64 KiB, but nearly every real value (capabilities, ACLs, overlay.opaque) is tiny.
constexpr size_t kStackValue = 4096;

// Xattr names are joined with NUL by the kernel; each becomes a JS string.
Napi::Value NameList(Napi::Env env, const char* data, size_t size) {
  size_t count = 0;
  for (size_t i = 0; i < size; i++) count += data[i] == '\0';
  Napi::Array names = Napi::Array::New(env, count);
  uint32_t index = 0;
  for (size_t pos = 0; pos < size;) {
    size_t len = std::strlen(data + pos);
    names.Set(index++, Napi::String::New(env, data + pos, len));
    pos += len + 1;
  }
  return names;
}

template <typename Target>
Napi::Value GetSync(const Napi::CallbackInfo& info) {
  Args a(info);
  Target t;
  t.Read(a);
  PathArg name;
  a.Path(1, "name", name);
  if (!a.ok()) return Napi::Value();
  char stackBuf[kStackValue];
  ssize_t n = t.Get(name.c_str(), stackBuf, sizeof stackBuf);
  if (n >= 0) return Napi::Buffer<char>::Copy(a.env(), stackBuf, static_cast<size_t>(n));
  int err = errno;
  std::vector<char> value;
  if (err == ERANGE && ReadGrowing([&](void* b, size_t s) { return t.Get(name.c_str(), b, s); }, value, err)) {
    return Napi::Buffer<char>::Copy(a.env(), value.data(), value.size());
  }
  SysError e;
  e.Set(err, Target::kGet, t.Label());
  return ThrowSysError(a.env(), e);
}

template <typename Target>
Napi::Value GetAsync(const Napi::CallbackInfo& info) {
  Args a(info);
  Target t;
  t.Read(a);
  PathArg name;
  a.Path(1, "name", name);
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [t = std::move(t), name = std::move(name)](SysError& e) {
        std::vector<char> value;
        int err = 0;
        if (!ReadGrowing([&](void* b, size_t s) { return t.Get(name.c_str(), b, s); }, value, err)) {
          e.Set(err, Target::kGet, t.Label());
        }
        return value;
      },
      [](Napi::Env env, std::vector<char>& value) -> Napi::Value {
        return Napi::Buffer<char>::Copy(env, value.data(), value.size());
      });
}

template <typename Target, bool Async>
Napi::Value Set(const Napi::CallbackInfo& info) {
  Args a(info);
  Target t;
  t.Read(a);
  PathArg name;
  a.Path(1, "name", name);
  BytesArg value;
  a.Bytes(2, "value", value);
  int flags = static_cast<int>(a.OptInteger(3, "flags", 0, INT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  auto work = [](const Target& t, const char* name, const void* data, size_t len, int flags, SysError& e) {
    if (t.Set(name, data, len, flags) != 0) e.Set(errno, Target::kSet, t.Label());
    return Nothing{};
  };
  if constexpr (!Async) {
    // The Buffer stays alive for the whole synchronous call: no copy.
    return Run<false>(
        a.env(), [&](SysError& e) { return work(t, name.c_str(), value.data, value.length, flags, e); }, Undefined);
  } else {
    // The JS side may change the Buffer while the pool thread runs: take a copy.
    std::vector<uint8_t> copy(value.data, value.data + value.length);
    return Run<true>(
        a.env(),
        [work, t = std::move(t), name = std::move(name), copy = std::move(copy), flags](SysError& e) {
          return work(t, name.c_str(), copy.data(), copy.size(), flags, e);
        },
        Undefined);
  }
}

template <typename Target>
Napi::Value ListSync(const Napi::CallbackInfo& info) {
  Args a(info);
  Target t;
  if (!t.Read(a)) return Napi::Value();
  char stackBuf[kStackValue];
  ssize_t n = t.List(stackBuf, sizeof stackBuf);
  if (n >= 0) return NameList(a.env(), stackBuf, static_cast<size_t>(n));
  int err = errno;
  std::vector<char> names;
  if (err == ERANGE && ReadGrowing([&](void* b, size_t s) { return t.List(static_cast<char*>(b), s); }, names, err)) {
    return NameList(a.env(), names.data(), names.size());
  }
  SysError e;
  e.Set(err, Target::kList, t.Label());
  return ThrowSysError(a.env(), e);
}

template <typename Target>
Napi::Value ListAsync(const Napi::CallbackInfo& info) {
  Args a(info);
  Target t;
  if (!t.Read(a)) return Napi::Value();
  return Run<true>(
      a.env(),
      [t = std::move(t)](SysError& e) {
        std::vector<char> names;
        int err = 0;
        if (!ReadGrowing([&](void* b, size_t s) { return t.List(static_cast<char*>(b), s); }, names, err)) {
          e.Set(err, Target::kList, t.Label());
        }
        return names;
      },
      [](Napi::Env env, std::vector<char>& names) { return NameList(env, names.data(), names.size()); });
}

template <typename Target, bool Async>
Napi::Value Remove(const Napi::CallbackInfo& info) {
  Args a(info);
  Target t;
  t.Read(a);
  PathArg name;
  a.Path(1, "name", name);
  if (!a.ok()) return Napi::Value();
  return Run<Async>(
      a.env(),
      [t = std::move(t), name = std::move(name)](SysError& e) {
        if (t.Remove(name.c_str()) != 0) e.Set(errno, Target::kRemove, t.Label());
        return Nothing{};
      },
      Undefined);
}

}  // namespace

void InitXattr(Napi::Env env, Napi::Object exports) {
  ExportBoth<GetSync<ByPath>, GetAsync<ByPath>>(env, exports, "lgetxattr");
  ExportBoth<Set<ByPath, false>, Set<ByPath, true>>(env, exports, "lsetxattr");
  ExportBoth<ListSync<ByPath>, ListAsync<ByPath>>(env, exports, "llistxattr");
  ExportBoth<Remove<ByPath, false>, Remove<ByPath, true>>(env, exports, "lremovexattr");
  ExportBoth<GetSync<ByFd>, GetAsync<ByFd>>(env, exports, "fgetxattr");
  ExportBoth<Set<ByFd, false>, Set<ByFd, true>>(env, exports, "fsetxattr");
  ExportBoth<ListSync<ByFd>, ListAsync<ByFd>>(env, exports, "flistxattr");
  ExportBoth<Remove<ByFd, false>, Remove<ByFd, true>>(env, exports, "fremovexattr");

  Napi::Object constants = exports.Get("constants").As<Napi::Object>();
  Napi::Object x = Napi::Object::New(env);
  SetConst(x, "CREATE", XATTR_CREATE);
  SetConst(x, "REPLACE", XATTR_REPLACE);
  constants.Set("XATTR", x);
}

}  // namespace gd
