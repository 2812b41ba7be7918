/*
 * Classic mount(2) and umount2(2), Promise-only (a mount can block on the device or the network).
 * Mount data is refused when longer than the kernel copies (one page): the kernel would silently
 * cut it, and an overlay cut short of its upperdir mounts read-only without a word.
 */
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "args.h"
#include "async.h"

namespace gd {
namespace {

Napi::Value Mount(const Napi::CallbackInfo& info) {
  Args a(info);
  PathArg source;
  a.NullablePath(0, "source", source);
  PathArg target;
  a.Path(1, "target", target);
  PathArg fstype;
  a.NullablePath(2, "fstype", fstype);
  unsigned long flags = a.Flags32(3, "flags");
  PathArg data;
  a.NullablePath(4, "data", data);
  if (!a.ok()) return Napi::Value();
  const long page = sysconf(_SC_PAGESIZE);
  if (!data.isNull() && static_cast<long>(data.size()) >= page) {
    std::string range = "shorter than the page size (" + std::to_string(page) + " bytes), as the kernel cuts it there";
    return ThrowOutOfRange(a.env(), "data.length", range.c_str(), Napi::Number::New(a.env(), static_cast<double>(data.size())));
  }
  return Run<true>(
      a.env(),
      [source = std::move(source), target = std::move(target), fstype = std::move(fstype), flags,
       data = std::move(data)](SysError& e) {
        if (mount(source.c_str_or_null(), target.c_str(), fstype.c_str_or_null(), flags, data.c_str_or_null()) != 0) {
          // path is the source when there is one (Node's "'src' -> 'dest'" shape), else the target.
          if (source.isNull()) e.Set(errno, "mount", target.c_str());
          else e.Set(errno, "mount", source.c_str(), target.c_str());
        }
        return Nothing{};
      },
      Undefined);
}

Napi::Value Umount2(const Napi::CallbackInfo& info) {
  Args a(info);
  PathArg target;
  a.Path(0, "target", target);
  int flags = static_cast<int>(a.OptInteger(1, "flags", 0, INT32_MAX, 0));
  if (!a.ok()) return Napi::Value();
  return Run<true>(
      a.env(),
      [target = std::move(target), flags](SysError& e) {
        if (umount2(target.c_str(), flags) != 0) e.Set(errno, "umount2", target.c_str());
        return Nothing{};
      },
      Undefined);
}

}  // namespace

void InitMount(Napi::Env env, Napi::Object exports) {
  exports.Set("mount", Napi::Function::New(env, Mount, "mount"));
  exports.Set("umount2", Napi::Function::New(env, Umount2, "umount2"));

  Napi::Object constants = exports.Get("constants").As<Napi::Object>();
  Napi::Object ms = Napi::Object::New(env);
  SetConst(ms, "RDONLY", MS_RDONLY);
  SetConst(ms, "NOSUID", MS_NOSUID);
  SetConst(ms, "NODEV", MS_NODEV);
  SetConst(ms, "NOEXEC", MS_NOEXEC);
  SetConst(ms, "SYNCHRONOUS", MS_SYNCHRONOUS);
  SetConst(ms, "REMOUNT", MS_REMOUNT);
  SetConst(ms, "MANDLOCK", MS_MANDLOCK);
  SetConst(ms, "DIRSYNC", MS_DIRSYNC);
  SetConst(ms, "NOSYMFOLLOW", 256);  // MS_NOSYMFOLLOW (5.10); older glibc headers lack it
  SetConst(ms, "NOATIME", MS_NOATIME);
  SetConst(ms, "NODIRATIME", MS_NODIRATIME);
  SetConst(ms, "BIND", MS_BIND);
  SetConst(ms, "MOVE", MS_MOVE);
  SetConst(ms, "REC", MS_REC);
  SetConst(ms, "SILENT", MS_SILENT);
  SetConst(ms, "POSIXACL", MS_POSIXACL);
  SetConst(ms, "UNBINDABLE", MS_UNBINDABLE);
  SetConst(ms, "PRIVATE", MS_PRIVATE);
  SetConst(ms, "SLAVE", MS_SLAVE);
  SetConst(ms, "SHARED", MS_SHARED);
  SetConst(ms, "RELATIME", MS_RELATIME);
  SetConst(ms, "STRICTATIME", MS_STRICTATIME);
  SetConst(ms, "LAZYTIME", MS_LAZYTIME);
  constants.Set("MS", ms);

  Napi::Object mnt = Napi::Object::New(env);
  SetConst(mnt, "FORCE", MNT_FORCE);
  SetConst(mnt, "DETACH", MNT_DETACH);
  SetConst(mnt, "EXPIRE", MNT_EXPIRE);
  SetConst(mnt, "UMOUNT_NOFOLLOW", UMOUNT_NOFOLLOW);
  constants.Set("MNT", mnt);
}

}  // namespace gd
