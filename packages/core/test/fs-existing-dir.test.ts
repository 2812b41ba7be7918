/** nearestExistingDir: the directory a driver judges its backing filesystem by before its home exists. */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nearestExistingDir } from '../src/fs/existing-dir.js';

test('the path itself, else its nearest existing ancestor; nothing is created', async () => {
  const dir = mkdtempSync('/tmp/fs-existing-');
  try {
    mkdirSync(`${dir}/a`);
    assert.is(await nearestExistingDir(`${dir}/a`), `${dir}/a`);
    assert.is(await nearestExistingDir(`${dir}/a/b/c/home`), `${dir}/a`);
    assert.is(await nearestExistingDir('/nonexistent-root-dir/x'), '/');
    writeFileSync(`${dir}/file`, '');
    assert.is(await nearestExistingDir(`${dir}/file`), dir, 'a file is not a directory to judge by');
    await nearestExistingDir(`${dir}/file/below`).then(
      () => assert.unreachable('a path through a file was taken'),
      (e: NodeJS.ErrnoException) => assert.is(e.code, 'ENOTDIR'),
    );
    assert.equal(readdirSync(`${dir}/a`), [], 'nothing created');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
