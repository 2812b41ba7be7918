/**
 * Our tars are byte-for-byte what moby writes: the same trees packed by a Go program that does what
 * moby's tarAppender does (Go's archive/tar, moby's header shaping, its overlay whiteout converter)
 * and by pack() compare equal. Needs a Go toolchain (scripts/setup.sh installs golang-go); without one
 * the tests fail saying so: a comparison that silently did not run would read as a pass.
 */
import { chmodSync, lchownSync, mkdirSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pack } from '../src/archive/index.js';
import { buildRichTree, collect, mknod, removeDir, run, scratchDir, setTimes, setXattr } from './fixtures-archive.js';
import { buildMobyTar } from './fixtures-archive-go.js';

const work = scratchDir('golden');
const built = await buildMobyTar(`${work}/go`).catch((err: unknown) => ({ skip: `go build failed: ${String(err)}` }));

async function mobyTar(src: string, ...args: string[]): Promise<Buffer> {
  if (!('path' in built)) throw new Error('unreachable');
  const { stdout } = await run(built.path, [src, ...args], { encoding: 'buffer', maxBuffer: 1 << 30 });
  return stdout;
}

function golden(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    if ('skip' in built) assert.unreachable(`cannot compare with Go's archive/tar: ${built.skip}`);
    await fn();
  });
}

golden('every entry type and header shape (USTAR, PAX, long and unicode names, big ids, pre-1970 times) as moby writes them', async () => {
  buildRichTree(`${work}/rich`);
  const ours = await collect(pack(`${work}/rich`));
  const theirs = await mobyTar(`${work}/rich`);
  assert.is(ours.length, theirs.length);
  assert.ok(ours.equals(theirs), 'pack() and moby write the same bytes');
});

golden('overlay whiteouts and opaque directories converted as moby’s overlay2 Diff does', async () => {
  const up = `${work}/upper`;
  mkdirSync(`${up}/op/sub`, { recursive: true });
  mknod(`${up}/gone`, 'char', 0, 0, 0);
  lchownSync(`${up}/gone`, 3, 4);
  mknod(`${up}/op/sub/gone`, 'char', 0, 0, 0);
  writeFileSync(`${up}/op/new`, 'n');
  chmodSync(`${up}/op`, 0o2751);
  setXattr(`${up}/op`, 'trusted.overlay.opaque', 'y');
  setXattr(`${up}/op/sub`, 'trusted.overlay.impure', 'y');
  for (const p of ['gone', 'op/sub/gone', 'op/new', 'op/sub', 'op']) setTimes(`${up}/${p}`, 1_700_000_000, 5);
  const ours = await collect(pack(up, { sourceWhiteouts: 'overlay' }));
  const theirs = await mobyTar(up, '-overlay');
  assert.ok(ours.equals(theirs), 'pack(overlay) and moby write the same bytes');
});

test.after(() => removeDir(work));

test.run();
