/**
 * Compatibility with stores Docker's overlay2 wrote, and the reverse. The fixture is built by hand
 * from moby's format (overlay.go): 64-hex layer ids, 26-character base32 link names, `diff` 0755,
 * `link` 0644, `lower` with `l/<name>` entries nearest first, `work` 0700, `committed` in parents,
 * `l/` 0700 with `../<id>/diff` symlinks, and diff dirs holding the kernel's whiteouts (0/0
 * character devices) and an opaque directory (`trusted.overlay.opaque=y`), as a container's changes
 * leave them. Our driver must mount it, diff it natively and list its changes; and a layer our
 * driver writes on it must mount the way moby mounts (mountFrom: relative `l/` paths from the home).
 */
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lgetxattrSync, lsetxattrSync, mknodSync, S } from '@graphdriver/native';
import { mountAt, readStream, start, tarNames, withRoot, listTar } from './helpers.js';

const run = promisify(execFile);

const ID1 = 'a1'.repeat(32);
const ID2 = 'b2'.repeat(32);
const ID3 = 'c3'.repeat(32);
const L1 = 'AAAAAAAAAAAAAAAAAAAAAAAAA2';
const L2 = 'BBBBBBBBBBBBBBBBBBBBBBBBB3';
const L3 = 'CCCCCCCCCCCCCCCCCCCCCCCCC4';

function file(path: string, content: string, mode = 0o644): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, mode);
}

function whiteout(path: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  mknodSync(path, S.IFCHR, 0, 0);
}

/** A store as Docker's overlay2 leaves it: an image of two layers and a container layer on it. */
function buildOverlay2Store(home: string): void {
  mkdirSync(join(home, 'l'), { recursive: true, mode: 0o700 });
  chmodSync(home, 0o710);
  const layer = (id: string, link: string, lower: string | undefined, committed: boolean): string => {
    const dir = join(home, id);
    mkdirSync(join(dir, 'diff'), { recursive: true });
    chmodSync(dir, 0o710);
    chmodSync(join(dir, 'diff'), 0o755);
    writeFileSync(join(dir, 'link'), link, { mode: 0o644 });
    if (lower !== undefined) {
      writeFileSync(join(dir, 'lower'), lower, { mode: 0o644 });
      mkdirSync(join(dir, 'work', 'work'), { recursive: true, mode: 0o700 });
    }
    if (committed) writeFileSync(join(dir, 'committed'), '', { mode: 0o600 });
    symlinkSync(`../${id}/diff`, join(home, 'l', link));
    return join(dir, 'diff');
  };
  const d1 = layer(ID1, L1, undefined, true);
  file(join(d1, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  file(join(d1, 'bin/sh'), 'the shell', 0o755);
  file(join(d1, 'usr/share/doc/readme'), 'docs');
  file(join(d1, 'var/log/old.log'), 'old');

  const d2 = layer(ID2, L2, `l/${L1}`, true);
  whiteout(join(d2, 'etc/passwd')); // RUN rm /etc/passwd
  file(join(d2, 'etc/hostname'), 'box\n');
  file(join(d2, 'usr/share/new'), 'replaced');
  lsetxattrSync(join(d2, 'usr/share'), 'trusted.overlay.opaque', Buffer.from('y')); // RUN rm -rf /usr/share && mkdir ...

  const d3 = layer(ID3, L3, `l/${L2}:l/${L1}`, false);
  file(join(d3, 'bin/sh'), 'a patched shell', 0o755);
  whiteout(join(d3, 'var/log/old.log'));
}

test('a store laid out by overlay2 mounts with every whiteout and opaque directory honoured', async () => {
  await withRoot(async (root) => {
    const home = join(root, 'overlay');
    buildOverlay2Store(home);
    const d = await start(root);
    assert.equal((await d.listLayers()).sort(), [ID1, ID2, ID3]);
    const merged = await d.get(ID3);
    try {
      assert.equal(readdirSync(join(merged, 'etc')).sort(), ['hostname'], '/etc/passwd deleted by a whiteout');
      assert.equal(readdirSync(join(merged, 'usr/share')), ['new'], '/usr/share replaced by an opaque directory');
      assert.is(readFileSync(join(merged, 'bin/sh'), 'utf8'), 'a patched shell');
      assert.equal(readdirSync(join(merged, 'var/log')), [], 'old.log deleted');
      writeFileSync(join(merged, 'written'), 'by a container');
    } finally {
      await d.put(ID3);
    }
    assert.is(readFileSync(join(home, ID3, 'diff', 'written'), 'utf8'), 'by a container', 'writes land in the container layer diff');
    // the image's top layer has a child: read-only, with its diff as top lower
    const image = await d.get(ID2);
    try {
      assert.match(mountAt(image)!.superOptions, /^ro,/, 'an overlay without upper is a read-only superblock');
      let code: string | undefined;
      try {
        writeFileSync(join(image, 'nope'), 'x');
      } catch (err) {
        code = (err as { code?: string }).code;
      }
      assert.is(code, 'EROFS');
      assert.equal(readdirSync(join(image, 'etc')), ['hostname']);
    } finally {
      await d.put(ID2);
    }
    await d.cleanup();
  });
});

test('native diff and changes of an overlay2 layer: AUFS whiteouts in the tar, deletes in the changes', async () => {
  await withRoot(async (root) => {
    const home = join(root, 'overlay');
    buildOverlay2Store(home);
    const d = await start(root);
    assert.ok(d.features.nativeDiff.ok, 'native diff is in use on this kernel');

    assert.equal(await tarNames(await d.diff(ID2, ID1)), [
      'etc/',
      'etc/hostname',
      'etc/.wh.passwd', // in the walk's place of `passwd`, as moby's tar has it
      'usr/',
      'usr/share/',
      'usr/share/.wh..wh..opq',
      'usr/share/new',
    ]);
    const entries = listTar(await readStream(await d.diff(ID3, ID2)));
    assert.equal(
      entries.map((e) => e.name),
      ['bin/', 'bin/sh', 'var/', 'var/log/', 'var/log/.wh.old.log'],
    );
    assert.not.ok(entries.some((e) => e.typeflag === '3'), 'no 0/0 character device in a layer tar');

    const sorted = (cs: Array<{ path: string; kind: string }>): string[] => cs.map((c) => `${c.kind} ${c.path}`).sort();
    assert.equal(sorted(await d.changes(ID3, ID2)), ['delete /var/log/old.log', 'modify /bin', 'modify /bin/sh', 'modify /var', 'modify /var/log']);
    const c2 = sorted(await d.changes(ID2, ID1));
    for (const expected of ['delete /etc/passwd', 'add /etc/hostname', 'add /usr/share/new', 'delete /usr/share/doc']) {
      assert.ok(c2.includes(expected), `changes(${ID2.slice(0, 4)}..) has "${expected}": ${c2.join(', ')}`);
    }
    // the diff of the image layer applies onto a new layer of ours with the same result
    await d.create('copy', ID1);
    await d.applyDiff('copy', ID1, await d.diff(ID2, ID1));
    const copyDiff = join(home, 'copy', 'diff');
    assert.is(lgetxattrSync(join(copyDiff, 'usr/share'), 'trusted.overlay.opaque').toString(), 'y', 'opaque marker back as the xattr');
    const merged = await d.get('copy');
    try {
      assert.equal(readdirSync(join(merged, 'etc')), ['hostname']);
      assert.equal(readdirSync(join(merged, 'usr/share')), ['new']);
    } finally {
      await d.put('copy');
    }
    await d.cleanup();
  });
});

test('the reverse: layers our driver adds to the store mount the way overlay2 mounts them (relative l/ paths from the home)', async () => {
  await withRoot(async (root) => {
    const home = join(root, 'overlay');
    buildOverlay2Store(home);
    const d = await start(root);
    await d.create('ours', ID2);
    const p = await d.get('ours');
    writeFileSync(join(p, 'ours.txt'), 'ours');
    await d.put('ours');
    await d.createReadWrite('container', 'ours');
    await d.cleanup();
    // moby's Get: lowerdir=<lower file>, upperdir=<id>/diff, workdir=<id>/work, from the home (mountFrom)
    const lower = readFileSync(join(home, 'container', 'lower'), 'utf8');
    const target = join(home, 'container', 'merged');
    mkdirSync(target, { recursive: true });
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=container/diff,workdir=container/work`, 'container/merged'], { cwd: home });
    try {
      assert.is(readFileSync(join(target, 'ours.txt'), 'utf8'), 'ours');
      assert.is(readFileSync(join(target, 'etc/hostname'), 'utf8'), 'box\n');
      assert.equal(readdirSync(join(target, 'usr/share')), ['new']);
    } finally {
      await run('umount', [target]);
    }
  });
});

test.run();
