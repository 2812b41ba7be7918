/**
 * Extended attributes, binary-safe: values are Buffers in and out. The l* calls take a path and act
 * on a symlink itself (never its target); the f* calls take an open fd (O.PATH fds do not work for
 * xattrs: the kernel says EBADF). Missing attributes fail with code ENODATA.
 */
import { binding, type PathLike } from './binding.js';

export const lgetxattrSync: (path: PathLike, name: string) => Buffer = binding.lgetxattrSync;
export const lgetxattr: (path: PathLike, name: string) => Promise<Buffer> = binding.lgetxattr;
/** `flags`: XATTR.CREATE (fail with EEXIST if present) or XATTR.REPLACE (fail with ENODATA if absent). */
export const lsetxattrSync: (path: PathLike, name: string, value: Uint8Array, flags?: number) => void = binding.lsetxattrSync;
export const lsetxattr: (path: PathLike, name: string, value: Uint8Array, flags?: number) => Promise<void> = binding.lsetxattr;
export const llistxattrSync: (path: PathLike) => string[] = binding.llistxattrSync;
export const llistxattr: (path: PathLike) => Promise<string[]> = binding.llistxattr;
export const lremovexattrSync: (path: PathLike, name: string) => void = binding.lremovexattrSync;
export const lremovexattr: (path: PathLike, name: string) => Promise<void> = binding.lremovexattr;

export const fgetxattrSync: (fd: number, name: string) => Buffer = binding.fgetxattrSync;
export const fgetxattr: (fd: number, name: string) => Promise<Buffer> = binding.fgetxattr;
export const fsetxattrSync: (fd: number, name: string, value: Uint8Array, flags?: number) => void = binding.fsetxattrSync;
export const fsetxattr: (fd: number, name: string, value: Uint8Array, flags?: number) => Promise<void> = binding.fsetxattr;
export const flistxattrSync: (fd: number) => string[] = binding.flistxattrSync;
export const flistxattr: (fd: number) => Promise<string[]> = binding.flistxattr;
export const fremovexattrSync: (fd: number, name: string) => void = binding.fremovexattrSync;
export const fremovexattr: (fd: number, name: string) => Promise<void> = binding.fremovexattr;
