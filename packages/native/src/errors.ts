/**
 * NativeError: what every failing syscall of this package throws or rejects with, shaped like
 * Node's own fs errors (`errno` negative, `code`, `syscall`, `path`, `dest`) plus `fsContext`, the
 * kernel's messages from an fs_context fd. The class is handed to the addon at load time
 * (binding.ts), so errors made in C++ are real instances of it.
 */

export class NativeError extends Error {
  /** Negative errno, as in Node: -2 for ENOENT. */
  declare errno: number;
  /** The errno name: 'ENOENT', 'EBUSY'... */
  declare code: string;
  /** The failed call: 'umount2', 'fsconfig', 'ioctl(LOOP_CONFIGURE)'... */
  declare syscall: string;
  /** The first path argument (for fsconfig: the key; for fsopen: the filesystem name). */
  declare path?: string;
  /** The second path (linkat, renameat2, symlinkat, mount's target, move_mount's destination). */
  declare dest?: string;
  /** fsopen/fsconfig/fsmount failures: the lines the kernel queued on the fs_context fd ("e overlay: ..."). */
  declare fsContext?: string[];
}

/**
 * True for errors of this package, and for any Error with the same shape (Node's own fs errors
 * included): code that handles `code: 'ENOENT'` works for both.
 */
export function isNativeError(err: unknown): err is NativeError {
  if (err instanceof NativeError) return true;
  if (!(err instanceof Error)) return false;
  const e = err as Partial<NativeError>;
  return typeof e.errno === 'number' && typeof e.code === 'string' && typeof e.syscall === 'string';
}

/** A TypeError like Node's ERR_INVALID_ARG_TYPE, for the object arguments the wrapper unpacks. */
export function invalidArgType(name: string, expected: string, received: unknown): TypeError {
  const shown = received === null ? 'null' : received === undefined ? 'undefined' : `type ${typeof received}`;
  const err = new TypeError(`The "${name}" argument must be ${expected}. Received ${shown}`) as TypeError & { code: string };
  err.code = 'ERR_INVALID_ARG_TYPE';
  return err;
}

/** Throws unless `value` is a non-null object (the option objects of openat2, mountSetattr...). */
export function assertObject(value: unknown, name: string): asserts value is object {
  if (typeof value !== 'object' || value === null) throw invalidArgType(name, 'of type object', value);
}
