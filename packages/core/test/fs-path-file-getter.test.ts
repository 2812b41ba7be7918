/** pathFileGetter: a layer's files by their tar path, never a file outside the layer's directory. */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pathFileGetter } from '../src/fs/path-file-getter.js';

test('reads files by tar path; symlinks resolve inside the directory; a closed getter refuses', async () => {
  const outer = mkdtempSync('/tmp/fs-getter-');
  try {
    const dir = `${outer}/layer`;
    mkdirSync(`${dir}/etc`, { recursive: true });
    writeFileSync(`${dir}/etc/motd`, 'inside');
    writeFileSync(`${outer}/secret`, 'outside');
    symlinkSync('/etc/motd', `${dir}/abs`);
    symlinkSync('../../secret', `${dir}/etc/up`);
    const getter = pathFileGetter(dir);
    assert.is(await text(await getter.get('etc/motd')), 'inside');
    assert.is(await text(await getter.get('/etc/motd')), 'inside', 'a leading slash is the layer root');
    assert.is(await text(await getter.get('abs')), 'inside', 'an absolute symlink is taken inside the layer');
    await getter.get('etc/up').then(
      () => assert.unreachable('a read through ../.. left the layer'),
      (e: NodeJS.ErrnoException) => assert.is(e.code, 'ENOENT'),
    );
    await getter.close();
    await getter.get('etc/motd').then(
      () => assert.unreachable('a closed getter still read'),
      (e: Error) => assert.match(e.message, /closed/),
    );
  } finally {
    rmSync(outer, { recursive: true, force: true });
  }
});

test.run();
