/**
 * writeFileAtomic: the new content whole, the exact mode whatever the umask, no temporary file
 * left, and on failure the old content untouched.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { removeAtomicTemporaries, writeFileAtomic } from '../src/fs/atomic-write.js';

test('replaces the content whole with the exact mode, leaves no temporary file', async () => {
  const dir = mkdtempSync('/tmp/fs-atomic-');
  const old = process.umask(0o077);
  try {
    writeFileSync(`${dir}/state`, 'old');
    await writeFileAtomic(`${dir}/state`, 'new content', { mode: 0o644 });
    assert.is(readFileSync(`${dir}/state`, 'utf8'), 'new content');
    assert.is(statSync(`${dir}/state`).mode & 0o777, 0o644, 'the umask does not apply');
    await writeFileAtomic(`${dir}/other`, Buffer.from([1, 2, 3]), { syncDirectory: false });
    assert.is(statSync(`${dir}/other`).mode & 0o777, 0o600, 'default mode');
    assert.equal(readdirSync(dir).sort(), ['other', 'state']);
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a write that cannot complete leaves the old file as it was and no temporary file', async () => {
  const dir = mkdtempSync('/tmp/fs-atomic-');
  try {
    mkdirSync(`${dir}/target`);
    writeFileSync(`${dir}/target/keep`, 'kept');
    // a directory where the file should go: the rename fails after the temporary file was written
    const failed = await writeFileAtomic(`${dir}/target`, 'x').catch((e: unknown) => e);
    assert.ok(failed instanceof Error && (failed as NodeJS.ErrnoException).code === 'EISDIR', String(failed));
    assert.is(readFileSync(`${dir}/target/keep`, 'utf8'), 'kept');
    assert.equal(readdirSync(dir), ['target'], 'no temporary file left');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('removeAtomicTemporaries removes only what an interrupted write left', async () => {
  const dir = mkdtempSync('/tmp/fs-atomic-');
  try {
    writeFileSync(`${dir}/.tmp-state-abc123`, 'half');
    writeFileSync(`${dir}/state`, 'whole');
    await removeAtomicTemporaries(dir, readdirSync(dir));
    assert.equal(readdirSync(dir), ['state']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
