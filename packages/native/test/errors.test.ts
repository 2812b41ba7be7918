/**
 * NativeError: the class, the type guard and the message shape shared by every binding.
 */
import { statSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AT, NativeError, isNativeError, mkdirat, mkdiratSync, unlinkatSync } from '../src/index.js';

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

test('sync failures throw NativeError instances shaped like Node fs errors', () => {
  const err = caught(() => mkdiratSync(AT.FDCWD, '/nonexistent-dir/x', 0o755));
  assert.instance(err, NativeError);
  assert.instance(err, Error);
  assert.ok(isNativeError(err));
  const e = err as NativeError;
  assert.is(e.message, "ENOENT: no such file or directory, mkdirat '/nonexistent-dir/x'");
  assert.is(e.errno, -2);
  assert.is(e.code, 'ENOENT');
  assert.is(e.syscall, 'mkdirat');
  assert.is(e.path, '/nonexistent-dir/x');
  assert.not.ok('dest' in e, 'no dest key when there is no second path');
  assert.not.ok('fsContext' in e);
  assert.match(e.stack ?? '', /errors\.test\.ts/, 'the stack points at the caller');
  // The same fields Node's own error has for the same failure.
  const nodeErr = caught(() => statSync('/nonexistent-dir/x')) as NodeJS.ErrnoException;
  assert.is(e.errno, nodeErr.errno);
  assert.is(e.code, nodeErr.code);
});

test('async failures reject with NativeError', async () => {
  try {
    await mkdirat(AT.FDCWD, '/', 0o755);
    assert.unreachable('mkdirat / succeeded');
  } catch (err) {
    assert.instance(err, NativeError);
    assert.is((err as NativeError).code, 'EEXIST');
    assert.is((err as NativeError).errno, -17);
    assert.is((err as NativeError).message, "EEXIST: file exists, mkdirat '/'");
  }
});

test('isNativeError: true for errno-shaped errors (Node fs ones too), false for others', () => {
  assert.ok(isNativeError(caught(() => statSync('/nonexistent-dir/x'))));
  assert.not.ok(isNativeError(new Error('plain')));
  assert.not.ok(isNativeError({ errno: -2, code: 'ENOENT', syscall: 'open' }), 'not an Error');
  assert.not.ok(isNativeError(caught(() => unlinkatSync(AT.FDCWD, 5 as never))), 'a TypeError is not');
  assert.not.ok(isNativeError(undefined));
});

test.run();
