/**
 * pack() then unpack() on the real kernel: every entry type and every piece of metadata a layer
 * carries comes back as it was (times to the second, as a layer tar keeps them).
 */
import { lchownSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AT, S, fstatatSync, lgetxattrSync } from '@graphdriver/native';
import { InvalidArchiveError, InvalidOptionError } from '../src/errors.js';
import { LayerTarWriter, pack, unpack } from '../src/archive/index.js';
import {
  ACL_ACCESS,
  BINARY_VALUE,
  CAPABILITY_V2,
  LONG_COMPONENT,
  SPLITTABLE_PATH,
  UNICODE_NAME,
  buildRichTree,
  collect,
  craftTar,
  listTar,
  rejects,
  removeDir,
  run,
  scratchDir,
  setTimes,
  streamOf,
  treeDigest,
} from './fixtures-archive.js';

test('every entry type and its metadata survive pack + unpack', async () => {
  const base = scratchDir('roundtrip');
  try {
    buildRichTree(`${base}/src`);
    mkdirSync(`${base}/dst`);
    const tar = await collect(pack(`${base}/src`));
    const size = await unpack(`${base}/dst`, streamOf(tar, 10_000));
    const noSocket = { exclude: (rel: string) => rel === 'a/sock' };
    assert.equal(treeDigest(`${base}/dst`), treeDigest(`${base}/src`, noSocket));
    // The sum of the entries' sizes: regular files, hard links counted once (later names are link entries).
    const expected = ['a/small', 'a/b/big', 'suid', 'sgid/file', 'a/uid300k', 'a/uid3m', 'a/acl', 'a/old',
      SPLITTABLE_PATH, LONG_COMPONENT, UNICODE_NAME].reduce((n, rel) => n + readFileSync(`${base}/src/${rel}`).length, 0);
    assert.is(size, expected);
  } finally {
    removeDir(base);
  }
});

test('binary xattrs: security.capability and an ACL come back byte for byte, and the capability works', async () => {
  const base = scratchDir('xattr');
  try {
    buildRichTree(`${base}/src`);
    mkdirSync(`${base}/dst`);
    await unpack(`${base}/dst`, pack(`${base}/src`));
    assert.equal(lgetxattrSync(`${base}/dst/suid`, 'security.capability'), CAPABILITY_V2);
    assert.equal(lgetxattrSync(`${base}/dst/a/acl`, 'system.posix_acl_access'), ACL_ACCESS);
    assert.equal(lgetxattrSync(`${base}/dst/a/small`, 'user.bin'), BINARY_VALUE);
    assert.equal(lgetxattrSync(`${base}/dst/a/rel`, 'trusted.sl').toString(), 'on a symlink');
    // setcap's own reader agrees (the capability survived the chown that clears it).
    const { stdout } = await run('getcap', [`${base}/dst/suid`]);
    assert.match(stdout, /=ep|\+ep/);
  } finally {
    removeDir(base);
  }
});

test('uid/gid 300000 travel in the octal header field, 3000000 in PAX, and both come back', async () => {
  const base = scratchDir('ids');
  try {
    buildRichTree(`${base}/src`);
    const tar = await collect(pack(`${base}/src`));
    const entries = await listTar(tar);
    const e300k = entries.find((e) => e.name === 'a/uid300k');
    const e3m = entries.find((e) => e.name === 'a/uid3m');
    assert.equal([e300k?.uid, e300k?.gid], [300000, 300001]);
    assert.equal([e3m?.uid, e3m?.gid], [3000000, 5]);
    // GNU tar reads the same owners (its listing is independent of our reader).
    writeFileSync(`${base}/t.tar`, tar);
    const listing = (await run('tar', ['-tvf', `${base}/t.tar`, '--numeric-owner'])).stdout;
    assert.match(listing, /300000\/300001 .* a\/uid300k/);
    assert.match(listing, /3000000\/5 .* a\/uid3m/);
    mkdirSync(`${base}/dst`);
    await unpack(`${base}/dst`, streamOf(tar));
    const st = fstatatSync(AT.FDCWD, `${base}/dst/a/uid3m`, AT.SYMLINK_NOFOLLOW);
    assert.equal([st.uid, st.gid], [3000000, 5]);
    const st2 = fstatatSync(AT.FDCWD, `${base}/dst/a/uid300k`, AT.SYMLINK_NOFOLLOW);
    assert.equal([st2.uid, st2.gid], [300000, 300001]);
  } finally {
    removeDir(base);
  }
});

test('symlink mtimes are the link’s own, and directory mtimes are set after their children', async () => {
  const base = scratchDir('mtimes');
  try {
    // a directory whose entries come after it: creating them would move its mtime
    mkdirSync(`${base}/src/dir/sub`, { recursive: true });
    writeFileSync(`${base}/src/dir/sub/f`, 'f');
    writeFileSync(`${base}/src/target`, 't');
    setTimes(`${base}/src/target`, 1_500_000_000);
    symlinkSync('../target', `${base}/src/dir/link`);
    setTimes(`${base}/src/dir/link`, 1_234_567_890);
    setTimes(`${base}/src/dir/sub/f`, 1_111_111_111);
    setTimes(`${base}/src/dir/sub`, 1_222_222_222);
    setTimes(`${base}/src/dir`, 1_333_333_333);
    const tar = await collect(pack(`${base}/src`));
    mkdirSync(`${base}/dst`);
    await unpack(`${base}/dst`, streamOf(tar));
    const mtime = (rel: string): number => fstatatSync(AT.FDCWD, `${base}/dst/${rel}`, AT.SYMLINK_NOFOLLOW).mtime.sec;
    assert.is(mtime('dir/link'), 1_234_567_890);
    assert.is(mtime('target'), 1_500_000_000, 'the symlink’s time did not go to its target');
    assert.is(mtime('dir/sub/f'), 1_111_111_111);
    assert.is(mtime('dir/sub'), 1_222_222_222);
    assert.is(mtime('dir'), 1_333_333_333);
  } finally {
    removeDir(base);
  }
});

test('hard links: later names are link entries to the first, and unpack links them to one inode', async () => {
  const base = scratchDir('hardlinks');
  try {
    buildRichTree(`${base}/src`);
    const tar = await collect(pack(`${base}/src`));
    const entries = await listTar(tar);
    const link = entries.find((e) => e.name === 'hl/small-link');
    assert.is(link?.kind, 'link');
    assert.is(link?.linkname, 'a/small');
    assert.is(entries.find((e) => e.name === 'a/big-link')?.linkname, 'a/b/big');
    mkdirSync(`${base}/dst`);
    await unpack(`${base}/dst`, streamOf(tar));
    const a = fstatatSync(AT.FDCWD, `${base}/dst/a/small`, AT.SYMLINK_NOFOLLOW);
    const b = fstatatSync(AT.FDCWD, `${base}/dst/hl/small-link`, AT.SYMLINK_NOFOLLOW);
    assert.is(a.ino, b.ino);
    assert.is(a.nlink, 2);
  } finally {
    removeDir(base);
  }
});

test('devices, FIFOs and sockets: devices keep their numbers, sockets are left out', async () => {
  const base = scratchDir('devices');
  try {
    buildRichTree(`${base}/src`);
    const tar = await collect(pack(`${base}/src`));
    const names = (await listTar(tar)).map((e) => e.name);
    assert.not.ok(names.includes('a/sock'));
    mkdirSync(`${base}/dst`);
    await unpack(`${base}/dst`, streamOf(tar));
    const chr = fstatatSync(AT.FDCWD, `${base}/dst/dev/char`, AT.SYMLINK_NOFOLLOW);
    assert.is(chr.mode & S.IFMT, S.IFCHR);
    assert.equal([chr.rdevMajor, chr.rdevMinor], [1, 3]);
    const blk = fstatatSync(AT.FDCWD, `${base}/dst/dev/block`, AT.SYMLINK_NOFOLLOW);
    assert.is(blk.mode & S.IFMT, S.IFBLK);
    assert.equal([blk.rdevMajor, blk.rdevMinor], [7, 200]);
    const fifo = fstatatSync(AT.FDCWD, `${base}/dst/dev/fifo`, AT.SYMLINK_NOFOLLOW);
    assert.is(fifo.mode & S.IFMT, S.IFIFO);
    assert.equal([fifo.uid, fifo.gid], [42, 43]);
  } finally {
    removeDir(base);
  }
});

test('id mappings: host ids are written as container ids, and container ids unpack to host ids', async () => {
  const base = scratchDir('idmap');
  const idMappings = {
    uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }],
    gidMap: [{ containerId: 0, hostId: 200000, size: 65536 }],
  };
  try {
    mkdirSync(`${base}/src/d`, { recursive: true });
    writeFileSync(`${base}/src/d/f`, 'x');
    lchownSync(`${base}/src/d`, 100000, 200000);
    lchownSync(`${base}/src/d/f`, 101000, 201000);
    const tar = await collect(pack(`${base}/src`, { idMappings }));
    const entries = await listTar(tar);
    assert.equal(entries.map((e) => [e.name, e.uid, e.gid]), [['d/', 0, 0], ['d/f', 1000, 1000]]);

    // container -> host on the way in; implied parents belong to the host ids of container root
    const tar2 = Buffer.concat([tar.subarray(0, tar.length - 1024),
      craftTar([{ name: 'implied/x/file', uid: 5, gid: 6, data: 'z' }])]);
    mkdirSync(`${base}/dst`);
    await unpack(`${base}/dst`, streamOf(tar2), { idMappings });
    const owner = (rel: string): [number, number] => {
      const st = fstatatSync(AT.FDCWD, `${base}/dst/${rel}`, AT.SYMLINK_NOFOLLOW);
      return [st.uid, st.gid];
    };
    assert.equal(owner('d'), [100000, 200000]);
    assert.equal(owner('d/f'), [101000, 201000]);
    assert.equal(owner('implied/x/file'), [100005, 200006]);
    assert.equal(owner('implied'), [100000, 200000]);
    assert.equal(owner('implied/x'), [100000, 200000]);
    assert.is(fstatatSync(AT.FDCWD, `${base}/dst/implied/x`, 0).mode & 0o7777, 0o755);

    // an id outside the mapping is refused on both sides
    lchownSync(`${base}/src/d/f`, 7, 7);
    await rejects(collect(pack(`${base}/src`, { idMappings })), InvalidOptionError, /no container id/);
    await rejects(
      unpack(`${base}/dst`, streamOf(craftTar([{ name: 'far', uid: 70000, data: '' }])), { idMappings }),
      InvalidArchiveError,
      /no host id/,
    );
  } finally {
    removeDir(base);
  }
});

test('owners are exact in set-gid directories, also when a directory’s group changes mid-archive', async () => {
  const base = scratchDir('sgid');
  try {
    mkdirSync(`${base}/root/pre`, { recursive: true });
    const tar = craftTar([
      { name: 's/', mode: 0o2775, gid: 5 },
      { name: 's/f', data: 'x' }, // root:root inside a set-gid dir of group 5
      { name: 's/sub/', mode: 0o755 }, // inherits set-gid and group 5 from mkdir, then takes 0:0
      { name: 's/sub/g', data: 'y' },
      { name: 'pre/a', data: 'a' }, // caches pre/ (group 0)
      { name: 'pre/', mode: 0o2775, gid: 9 }, // dir over dir: group and set-gid change
      { name: 'pre/b', data: 'b' },
      { name: 'pre/l', kind: 'symlink', linkname: 'b' },
    ]);
    await unpack(`${base}/root`, streamOf(tar));
    const st = (rel: string) => fstatatSync(AT.FDCWD, `${base}/root/${rel}`, AT.SYMLINK_NOFOLLOW);
    assert.equal([st('s').gid, st('s').mode & 0o7777], [5, 0o2775]);
    assert.equal([st('s/f').uid, st('s/f').gid], [0, 0]);
    assert.equal([st('s/sub').gid, st('s/sub').mode & 0o7777], [0, 0o755]);
    assert.is(st('s/sub/g').gid, 0);
    assert.equal([st('pre').gid, st('pre').mode & 0o7777], [9, 0o2775]);
    assert.is(st('pre/b').gid, 0);
    assert.is(st('pre/l').gid, 0);
  } finally {
    removeDir(base);
  }
});

test('LayerTarWriter: entries in call order even without awaiting, whiteouts, finalize', async () => {
  const base = scratchDir('writer');
  try {
    buildRichTree(`${base}/src`);
    const w = new LayerTarWriter();
    const done = collect(w.stream);
    const adds = [w.addPath(`${base}/src`, '/a/b/big'), w.addPath(`${base}/src`, 'a/big-link'), w.addWhiteout('/x/gone'),
      w.addPath(`${base}/src`, './a')];
    await Promise.all(adds);
    await w.finalize();
    const entries = await listTar(await done);
    assert.equal(entries.map((e) => [e.name, e.kind]), [['a/b/big', 'file'], ['a/big-link', 'link'], ['x/.wh.gone', 'file'], ['a/', 'dir']]);
    const wh = entries[2];
    assert.equal([wh?.mode, wh?.uid, wh?.gid, wh?.size, wh?.mtime.sec], [0, 0, 0, 0, 0]);
    assert.equal(entries[0]?.data, readFileSync(`${base}/src/a/b/big`));
    await rejects(w.addPath(`${base}/src`, 'suid'), Error, /finalized/);
    await rejects(w.addPath(`${base}/src`, '../etc'), TypeError, /'\.\.'/);
  } finally {
    removeDir(base);
  }
});

test.run();
