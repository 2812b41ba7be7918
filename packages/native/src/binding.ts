/**
 * Loads the compiled addon and describes its raw functions. Internal: the public, typed API is in
 * the concern files (at.ts, xattr.ts, ...), which unpack option objects into plain arguments here
 * because reading a JS object's properties from C++ costs more than passing numbers.
 */
import { createRequire } from 'node:module';
import { NativeError } from './errors.js';
import type { LoopStatus } from './loop.js';
import type { FsXattr, Quota } from './quota.js';
import type { DmAbi } from './dm.js';

/** A path argument: a string (UTF-8) or the raw bytes of a name. */
export type PathLike = string | Uint8Array;

type Sync<A extends unknown[], R> = (...args: A) => R;
type Async<A extends unknown[], R> = (...args: A) => Promise<R>;
type Both<Name extends string, A extends unknown[], R> = { [K in `${Name}Sync`]: Sync<A, R> } & { [K in Name]: Async<A, R> };

type Int = number;
type OptInt = number | undefined | null;

export type RawBinding = Both<'openat2', [Int, PathLike, Int, OptInt, OptInt], number> &
  Both<'mkdirat', [Int, PathLike, Int], void> &
  Both<'mknodat', [Int, PathLike, Int, Int, Int], void> &
  Both<'symlinkat', [PathLike, Int, PathLike], void> &
  Both<'linkat', [Int, PathLike, Int, PathLike, OptInt], void> &
  Both<'unlinkat', [Int, PathLike, OptInt], void> &
  Both<'renameat2', [Int, PathLike, Int, PathLike, OptInt], void> &
  Both<'fchownat', [Int, PathLike, Int, Int, OptInt], void> &
  Both<'fchmodat', [Int, PathLike, Int, OptInt], void> &
  Both<'utimensat', [Int, PathLike, Int, Int, Int, Int, OptInt], void> &
  Both<'readlinkat', [Int, PathLike], string> &
  Both<'getdents', [Int], Buffer> &
  Both<'lgetxattr', [PathLike, PathLike], Buffer> &
  Both<'lsetxattr', [PathLike, PathLike, Uint8Array, OptInt], void> &
  Both<'llistxattr', [PathLike], string[]> &
  Both<'lremovexattr', [PathLike, PathLike], void> &
  Both<'fgetxattr', [Int, PathLike], Buffer> &
  Both<'fsetxattr', [Int, PathLike, Uint8Array, OptInt], void> &
  Both<'flistxattr', [Int], string[]> &
  Both<'fremovexattr', [Int, PathLike], void> &
  Both<'mknod', [PathLike, Int, Int, Int], void> & {
    constants: RawConstants;
    setErrorClass(errorClass: typeof NativeError): void;
    fstatatSync(dirfd: Int, name: PathLike, flags: OptInt, out: Float64Array): void;
    fstatat(dirfd: Int, name: PathLike, flags: OptInt): Promise<Float64Array>;
    syncfs(fd: Int): Promise<void>;
    ficlone(destFd: Int, srcFd: Int): Promise<void>;
    copyFileRange(srcFd: Int, destFd: Int, length: Int, srcOffset: OptInt, destOffset: OptInt): Promise<number>;
    mount(source: PathLike | null, target: PathLike, fstype: string | null, flags: Int, data: string | null | undefined): Promise<void>;
    umount2(target: PathLike, flags: OptInt): Promise<void>;
    fsopen(fsName: string, flags: OptInt): Promise<number>;
    fsconfigSetString(fsfd: Int, key: string, value: string): Promise<void>;
    fsconfigSetFlag(fsfd: Int, key: string): Promise<void>;
    fsconfigSetFd(fsfd: Int, key: string, fd: Int): Promise<void>;
    fsconfigCreate(fsfd: Int): Promise<void>;
    fsmount(fsfd: Int, flags: OptInt, attrFlags: OptInt): Promise<number>;
    moveMount(fromDirfd: Int, fromPath: PathLike, toDirfd: Int, toPath: PathLike, flags: OptInt): Promise<void>;
    openTree(dirfd: Int, path: PathLike, flags: OptInt): Promise<number>;
    mountSetattr(
      dirfd: Int,
      path: PathLike,
      flags: Int,
      attrSet: OptInt,
      attrClr: OptInt,
      propagation: OptInt,
      usernsFd: OptInt,
    ): Promise<void>;
    loopGetFree(): Promise<number>;
    loopConfigure(loopFd: Int, backingFd: Int, flags: OptInt, offset: OptInt, sizeLimit: OptInt, blockSize: OptInt): Promise<void>;
    loopStatus(loopFd: Int): Promise<LoopStatus>;
    loopSetFlags(loopFd: Int, flags: Int): Promise<void>;
    loopClear(loopFd: Int): Promise<void>;
    loopSetCapacity(loopFd: Int): Promise<void>;
    blkDiscard(fd: Int, offset: Int, length: Int): Promise<void>;
    blkGetSize64(fd: Int): Promise<number>;
    fsGetXattr(fd: Int): Promise<FsXattr>;
    fsSetXattr(fd: Int, xflags: OptInt, projid: OptInt): Promise<void>;
    quotaGet(target: string | Int, type: Int, id: Int): Promise<Quota>;
    quotaSet(
      target: string | Int,
      type: Int,
      id: Int,
      blockHardLimit: OptInt,
      blockSoftLimit: OptInt,
      inodeHardLimit: OptInt,
      inodeSoftLimit: OptInt,
    ): Promise<void>;
    quotaFormat(target: string | Int, type: Int): Promise<number>;
    dmAbi(): DmAbi;
    dmOpenControl(): Promise<number>;
    dmIoctl(controlFd: Int, command: Int, buf: Uint8Array): Promise<Buffer>;
  };

/** The constants as the addon reports them from the C headers it was built with. */
export type RawConstants = Record<string, Record<string, number>>;

const require = createRequire(import.meta.url);

// src/ (tests, tsx) and dist/ (published) are both one level below the package root.
export const binding = require('../build/Release/graphdriver_native.node') as RawBinding;
binding.setErrorClass(NativeError);
