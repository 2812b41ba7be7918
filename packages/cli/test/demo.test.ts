/**
 * The README's demo runs on the machine's default driver and on vfs: every step printed, both trees
 * found equal, and nothing left behind in the temporary directory or mounted.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdir } from 'node:fs/promises';
import { mountsUnder } from '@graphdriver/core';
import { cli, withScratch } from './helpers.js';

for (const driver of [undefined, 'vfs']) {
  test(`demo on ${driver ?? 'the default driver'}`, () =>
    withScratch('demo', async (tmp) => {
      const saved = process.env.TMPDIR;
      process.env.TMPDIR = tmp;
      let r;
      try {
        r = await cli([...(driver === undefined ? [] : ['--driver', driver]), 'demo']);
      } finally {
        if (saved === undefined) delete process.env.TMPDIR;
        else process.env.TMPDIR = saved;
      }
      assert.is(r.code, 0, r.stderr);
      const out = r.stdout;
      for (let step = 1; step <= 10; step++) assert.match(out, new RegExp(`^${step}\\. `, 'm'), `step ${step} is printed`);
      assert.match(out, new RegExp(`Storage Driver: ${driver ?? 'overlay'}`));
      assert.match(out, /\$ graphdriver import .*\n +imported demo:latest +image [0-9a-f]{12} +3 layers \(3 new, 0 already stored\)/);
      assert.match(out, /\$ graphdriver changes ctr\n(.*\n)*? +D \/bin\/hello\n/);
      assert.match(out, /\$ graphdriver diff ctr -o .*\n +wrote .*ctr-diff\.tar: .* entries, sha256:[0-9a-f]{64}/);
      assert.match(out, /no differences: names, types, contents, link targets, modes, owners and file mtimes agree/);
      assert.match(out, /\(the same tar, byte for byte\)/);
      assert.match(out, /Deleted layer: [0-9a-f]{64}\n +Deleted layer: [0-9a-f]{64}\n +Deleted layer: [0-9a-f]{64}\n/);
      assert.equal(await readdir(tmp), [], 'the scratch directory is gone');
      assert.equal(await mountsUnder(tmp), []);
    }));
}

test.run();
