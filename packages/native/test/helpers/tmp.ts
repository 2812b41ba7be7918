/**
 * Test helpers of this package: scratch directories under /tmp/native-*, and assertions on the
 * errors a call throws or rejects with.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as assert from 'uvu/assert';
import { isNativeError, type NativeError } from '../../src/index.js';

/** Runs `fn` in a fresh /tmp/native-<what>-XXXXXX directory that is removed afterwards. */
export async function withTmpDir<T>(what: string, fn: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = mkdtempSync(`/tmp/native-${what}-`);
  try {
    return await fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ExpectedError {
  code: string;
  syscall?: string;
  path?: string;
  dest?: string;
  message?: string | RegExp;
}

/** Asserts that `err` is a NativeError with these fields (errno must be the negative of the code's). */
export function assertNativeError(err: unknown, expected: ExpectedError): NativeError {
  if (!isNativeError(err)) {
    assert.unreachable(`expected a NativeError, got ${String(err)}`);
    throw err;
  }
  assert.is(err.code, expected.code, `code of: ${err.message}`);
  assert.type(err.errno, 'number');
  assert.ok(err.errno < 0, 'errno is negative');
  if (expected.syscall !== undefined) assert.is(err.syscall, expected.syscall);
  if ('path' in expected) assert.is(err.path, expected.path);
  if ('dest' in expected) assert.is(err.dest, expected.dest);
  if (typeof expected.message === 'string') assert.is(err.message, expected.message);
  else if (expected.message instanceof RegExp) assert.match(err.message, expected.message);
  return err;
}

export function throwsNative(fn: () => unknown, expected: ExpectedError): NativeError {
  try {
    fn();
  } catch (err) {
    return assertNativeError(err, expected);
  }
  assert.unreachable(`expected ${expected.code}, but the call succeeded`);
  throw new Error('unreachable');
}

export async function rejectsNative(promise: Promise<unknown>, expected: ExpectedError): Promise<NativeError> {
  try {
    await promise;
  } catch (err) {
    return assertNativeError(err, expected);
  }
  assert.unreachable(`expected ${expected.code}, but the call succeeded`);
  throw new Error('unreachable');
}

/** Asserts a Node-style argument error (TypeError/RangeError with code ERR_...). */
export function throwsArgError(fn: () => unknown, ctor: typeof TypeError | typeof RangeError, code: string, message?: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ctor);
    assert.is((err as { code?: string }).code, code);
    if (message) assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected ${code}, but the call succeeded`);
  throw new Error('unreachable');
}
