/**
 * Hostile and broken tars. Every breakout gives a typed error AND leaves everything outside the
 * root as it was (a canary file unchanged, nothing new beside it, no fd left open); broken input
 * is an InvalidArchiveError; an abort is an AbortError that closes what was opened.
 */
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AT, S, fstatatSync } from '@graphdriver/native';
import { ArchiveBreakoutError, InvalidArchiveError } from '../src/errors.js';
import { AbortError, pack, unpack } from '../src/archive/index.js';
import { encodePaxRecords } from '../src/archive/pax.js';
import {
  buildRichTree,
  collect,
  craftTar,
  openFdCount,
  outsideDigest,
  rawHeaderBlock,
  rawPaxEntry,
  rejects,
  removeDir,
  scratchDir,
  setTimes,
  streamOf,
  type CraftEntry,
} from './fixtures-archive.js';

/** The rich tree packed by us, made in its own scratch directory. */
async function packedRichTree(): Promise<Buffer> {
  const src = scratchDir('safe-src');
  try {
    buildRichTree(src);
    return await collect(pack(src));
  } finally {
    removeDir(src);
  }
}

interface Jail {
  base: string;
  root: string;
  outside: string;
}

/** base/{root/, outside/canary, outside/dir/}: run fn, then prove nothing outside root changed. */
async function inJail(tag: string, fn: (jail: Jail) => Promise<void>): Promise<void> {
  const base = scratchDir(tag);
  try {
    const jail = { base, root: `${base}/root`, outside: `${base}/outside` };
    mkdirSync(jail.root);
    mkdirSync(`${jail.outside}/dir`, { recursive: true });
    writeFileSync(`${jail.outside}/canary`, 'canary');
    setTimes(`${jail.outside}/canary`, 1_000_000_000, 5);
    setTimes(`${jail.outside}/dir`, 1_000_000_000, 6);
    setTimes(jail.outside, 1_000_000_000, 7);
    const before = outsideDigest(base, 'root');
    const fds = openFdCount();
    await fn(jail);
    assert.equal(outsideDigest(base, 'root'), before, 'nothing outside the root changed');
    assert.is(readFileSync(`${jail.outside}/canary`, 'utf8'), 'canary');
    assert.is(openFdCount(), fds, 'every fd opened was closed');
  } finally {
    removeDir(base);
  }
}

async function refused(root: string, entries: CraftEntry[], why: RegExp): Promise<ArchiveBreakoutError> {
  return rejects(unpack(root, streamOf(craftTar(entries))), ArchiveBreakoutError, why);
}

test('names with ../ are breakouts', () =>
  inJail('safe-dotdot', async ({ root }) => {
    await refused(root, [{ name: '../outside/canary', data: 'pwned' }], /leads out of the root/);
    await refused(root, [{ name: 'a/../../outside/new', data: 'pwned' }], /leads out of the root/);
    await refused(root, [{ name: '../outside/dir/' }], /leads out/);
  }));

test('absolute names are taken inside the root, as moby joins them to it (umoci writes its root as "/")', () =>
  inJail('safe-abs', async ({ root, outside }) => {
    await unpack(
      root,
      streamOf(craftTar([
        { name: '/', kind: 'dir' },
        { name: `${outside}/canary`, data: 'inside' },
        { name: '/etc/passwd', data: 'inside too' },
        { name: '/../../etc/shadow', data: 'clamped at the root' },
      ])),
    );
    assert.is(readFileSync(`${root}${outside}/canary`, 'utf8'), 'inside');
    assert.is(readFileSync(`${root}/etc/passwd`, 'utf8'), 'inside too');
    assert.is(readFileSync(`${root}/etc/shadow`, 'utf8'), 'clamped at the root');
  }));

test('a symlink whose relative target leaves the root is refused when it is created (moby’s rule)', () =>
  inJail('safe-symlink', async ({ root }) => {
    await refused(root, [{ name: 'evil', kind: 'symlink', linkname: '../outside' }], /symlink target/);
    await refused(root, [{ name: 'a/b/evil', kind: 'symlink', linkname: '../../../outside/canary' }], /symlink target/);
    // written through after: the tar stops at the link, the file is never written
    await refused(
      root,
      [{ name: 'd', kind: 'symlink', linkname: 'x/../../outside' }, { name: 'd/canary', data: 'pwned' }],
      /symlink target/,
    );
  }));

test('absolute symlink targets are taken inside the root when written through (chroot semantics)', () =>
  inJail('safe-abs-symlink', async ({ root, outside }) => {
    mkdirSync(`${root}${outside}`, { recursive: true });
    await unpack(
      root,
      streamOf(craftTar([
        { name: 'slash', kind: 'symlink', linkname: '/' },
        { name: 'slash/made-inside', data: 'inside' },
        { name: 'abs', kind: 'symlink', linkname: outside },
        { name: 'abs/canary', data: 'inside too' },
        { name: 'up', kind: 'symlink', linkname: '/../../../..' },
        { name: 'up/top', data: 'clamped at the root' },
      ])),
    );
    assert.is(readFileSync(`${root}/made-inside`, 'utf8'), 'inside');
    assert.is(readFileSync(`${root}${outside}/canary`, 'utf8'), 'inside too');
    assert.is(readFileSync(`${root}/top`, 'utf8'), 'clamped at the root');
  }));

test('writing through an absolute symlink with no directory behind it inside the root is a breakout; through a file, an invalid archive', () =>
  inJail('safe-dangling', async ({ root, outside }) => {
    // `esc` names the real outside dir, but inside the root (chroot view) nothing is there: it must
    // neither be followed on the host nor have the missing path made up inside.
    await refused(root, [{ name: 'esc', kind: 'symlink', linkname: outside }, { name: 'esc/through', data: 'pwned' }], /symlink that does not lead to a directory/);
    await refused(root, [{ name: 'e2', kind: 'symlink', linkname: `${outside}/dir` }, { name: 'e2/newdir/' }], /symlink that does not lead to a directory/);
    await refused(
      root,
      [{ name: 'd/' }, { name: 'd/first', data: '1' }, { name: 'd', kind: 'symlink', linkname: outside }, { name: 'd/second', data: '2' }],
      /symlink that does not lead to a directory/,
    );
    assert.equal(readdirSync(root).sort(), ['d', 'e2', 'esc'], 'only the links themselves were made');
    const err = await rejects(
      unpack(root, streamOf(craftTar([{ name: 'f', data: 'file' }, { name: 'f/x', data: 'x' }]))),
      InvalidArchiveError,
      /not a directory/,
    );
    assert.is(err.entry, 'f/x');
  }));

test('writing through a symlink that resolves out of the root is a breakout, even when it looked harmless', () =>
  inJail('safe-chain', async ({ root }) => {
    // `b` -> `a/..` stays inside lexically, but `a` -> `.` makes it the root's parent.
    await refused(
      root,
      [
        { name: 'a', kind: 'symlink', linkname: '.' },
        { name: 'b', kind: 'symlink', linkname: 'a/..' },
        { name: 'b/outside/canary', data: 'pwned' },
      ],
      /relative symlink/,
    );
    // a symlink that was in the root before the tar (a lower layer's content)
    symlinkSync('../outside', `${root}/pre`);
    await refused(root, [{ name: 'pre/canary', data: 'pwned' }], /relative symlink/);
    await refused(root, [{ name: 'pre/dir/new/file', data: 'pwned' }], /relative symlink/);
  }));

test('a symlink replacing a directory mid-archive: later entries go where the link says, never into the old directory', () =>
  inJail('safe-replace', async ({ root }) => {
    await unpack(
      root,
      streamOf(craftTar([
        { name: 'x/' },
        { name: 'd/' },
        { name: 'd/f1', data: '1' }, // caches d's fd
        { name: 'd', kind: 'symlink', linkname: 'x' },
        { name: 'd/f2', data: '2' }, // must land in x, through the new link
      ])),
    );
    assert.equal(readdirSync(`${root}/x`), ['f2']);
    assert.is(fstatatSync(AT.FDCWD, `${root}/d`, AT.SYMLINK_NOFOLLOW).mode & S.IFMT, S.IFLNK);
    // and a replacing link that escapes by resolution is a breakout at the first write through it
    await refused(
      root,
      [
        { name: 'e/' },
        { name: 'e/f1', data: '1' },
        { name: 'dot', kind: 'symlink', linkname: '.' },
        { name: 'e', kind: 'symlink', linkname: 'dot/..' },
        { name: 'e/outside/canary', data: 'pwned' },
      ],
      /relative symlink/,
    );
  }));

test('hard links to targets outside the root are breakouts', () =>
  inJail('safe-hardlink', async ({ root, outside }) => {
    await refused(root, [{ name: 'l', kind: 'link', linkname: '../outside/canary' }], /hard link target/);
    await refused(root, [{ name: 'l', kind: 'link', linkname: 'a/../../outside/canary' }], /hard link target/);
    symlinkSync('../outside', `${root}/pre`);
    await refused(root, [{ name: 'l', kind: 'link', linkname: 'pre/canary' }], /relative symlink/);
    // an absolute target is a path inside the root (as moby, for kaniko): here it does not exist
    await rejects(
      unpack(root, streamOf(craftTar([{ name: 'l', kind: 'link', linkname: `${outside}/canary` }]))),
      InvalidArchiveError,
      /does not exist/,
    );
    // a link through an absolute symlink stays inside too
    mkdirSync(`${root}/real`);
    writeFileSync(`${root}/real/t`, 'inside');
    await unpack(root, streamOf(craftTar([
      { name: 'abs', kind: 'symlink', linkname: '/real' },
      { name: 'l2', kind: 'link', linkname: 'abs/t' },
    ])));
    assert.is(fstatatSync(AT.FDCWD, `${root}/l2`, 0).ino, fstatatSync(AT.FDCWD, `${root}/real/t`, 0).ino);
  }));

test('device nodes are refused with noDevices, whiteout devices are still fine', () =>
  inJail('safe-devices', async ({ root }) => {
    await rejects(
      unpack(root, streamOf(craftTar([{ name: 'mem', kind: 'char', devmajor: 1, devminor: 1 }])), { noDevices: true }),
      InvalidArchiveError,
      /device nodes are not allowed.*mem/,
    );
    await rejects(
      unpack(root, streamOf(craftTar([{ name: 'sda', kind: 'block', devmajor: 8, devminor: 0 }])), { noDevices: true }),
      InvalidArchiveError,
      /sda/,
    );
    await unpack(root, streamOf(craftTar([{ name: 'wh', kind: 'char' }, { name: 'p', kind: 'fifo' }, { name: '.wh.x' }])), {
      noDevices: true,
      whiteouts: 'overlay',
    });
    const st = fstatatSync(AT.FDCWD, `${root}/x`, AT.SYMLINK_NOFOLLOW);
    assert.equal([st.mode & S.IFMT, st.rdevMajor, st.rdevMinor], [S.IFCHR, 0, 0]);
  }));

test('truncated, corrupt and non-tar input is an InvalidArchiveError', () =>
  inJail('safe-garbage', async ({ root }) => {
    const good = await packedRichTree();
    const fresh = (n: number): string => {
      const d = `${root}/t${n}`;
      mkdirSync(d);
      return d;
    };
    // cut inside a file's data, inside a header, inside a PAX header
    for (const [i, cut] of [1, 700, 5000, good.length - 2000].entries()) {
      await rejects(unpack(fresh(i), streamOf(good.subarray(0, cut))), InvalidArchiveError);
    }
    const random = Buffer.alloc(8192);
    for (let i = 0; i < random.length; i++) random[i] = (i * 7919 + 13) & 0xff;
    await rejects(unpack(fresh(10), streamOf(random)), InvalidArchiveError, /not a valid tar/);
    await rejects(unpack(fresh(11), streamOf(Buffer.from('just some text\n'.repeat(100)))), InvalidArchiveError);
    const corrupt = Buffer.from(good);
    corrupt[600] = (corrupt[600] as number) ^ 0x55; // second header's checksum no longer matches
    await rejects(unpack(fresh(12), streamOf(corrupt)), InvalidArchiveError, /checksum|Invalid tar header/i);
    const { gzipSync } = await import('node:zlib');
    await rejects(unpack(fresh(13), streamOf(gzipSync(good))), InvalidArchiveError, /gzip-compressed/);
    // an empty input is an empty layer (as Go's reader sees it)
    assert.is(await unpack(fresh(14), streamOf(Buffer.alloc(0))), 0);
  }));

test('malformed PAX records, sparse files and unknown entry types are refused and named', () =>
  inJail('safe-pax', async ({ root }) => {
    const file = craftTar([{ name: 'f', data: 'x' }], { end: false });
    const tail = Buffer.alloc(1024);
    const bad = async (body: string | Buffer, why: RegExp): Promise<void> => {
      const tar = Buffer.concat([rawPaxEntry(Buffer.from(body)), file, tail]);
      await rejects(unpack(root, streamOf(tar)), InvalidArchiveError, why);
    };
    await bad('12 path=ab\n', /record length/);
    await bad('x path=ab\n', /bad record length/);
    await bad('11 pathab\n\n', /without "="/);
    await bad(encodePaxRecords([['uid', Buffer.from('-12')]]), /uid/);
    await bad(encodePaxRecords([['mtime', Buffer.from('tomorrow')]]), /mtime/);
    await bad(encodePaxRecords([['GNU.sparse.major', Buffer.from('1')]]), /sparse/);
    const sparse = Buffer.concat([rawHeaderBlock('holes', 'S', 0), tail]);
    const err = await rejects(unpack(root, streamOf(sparse)), InvalidArchiveError, /unsupported tar entry type/);
    assert.is(err.entry, 'holes');
    await rejects(unpack(root, streamOf(Buffer.concat([rawHeaderBlock('label', 'V', 0), tail]))), InvalidArchiveError, /label/);
    // a global PAX header is ignored, as Go and moby do (its path does not rename later entries)
    const gbody = encodePaxRecords([['path', Buffer.from('renamed')]]);
    const global = Buffer.concat([rawHeaderBlock('g', 'g', gbody.length), gbody, Buffer.alloc(512 - gbody.length), file, tail]);
    assert.is(await unpack(root, streamOf(global)), 1);
    assert.equal(readdirSync(root), ['f']);
  }));

test('a failing input stream’s error comes through unchanged; an input closed before its end is an invalid archive', () =>
  inJail('safe-input', async ({ root }) => {
    const head = craftTar([{ name: 'f', data: Buffer.alloc(100_000) }], { end: false }).subarray(0, 4096);
    const failing = new Readable({ read() {} });
    failing.push(head);
    const boom = new Error('network went away');
    setTimeout(() => failing.destroy(boom), 20);
    const err = await rejects(unpack(root, failing), Error, /network went away/);
    assert.is(err, boom);
    const closing = new Readable({ read() {} });
    closing.push(head);
    setTimeout(() => closing.destroy(), 20);
    await rejects(unpack(root, closing), InvalidArchiveError, /closed before its end/);
    // a stream that already failed or was destroyed before unpack got it: rejected, not waited on forever
    const failed = new Readable({ read() {} });
    failed.on('error', () => undefined); // its producer saw the error; nobody else listens
    failed.destroy(boom);
    await new Promise((r) => setImmediate(r));
    assert.is(await rejects(unpack(root, failed), Error, /network went away/), boom);
    const destroyed = new Readable({ read() {} });
    destroyed.destroy();
    await new Promise((r) => setImmediate(r));
    await rejects(unpack(root, destroyed), InvalidArchiveError, /closed before its end/);
  }));

test('abort: unpack rejects with AbortError and closes its fds; pack’s stream errors with AbortError', () =>
  inJail('safe-abort', async ({ root }) => {
    // a tar that starts a 1 MiB file and then stalls
    const head = craftTar([{ name: 'dir/' }, { name: 'dir/big', data: Buffer.alloc(1 << 20) }], { end: false });
    const stalled = new Readable({ read() {} });
    stalled.push(head.subarray(0, 4096));
    const ac = new AbortController();
    const pending = unpack(root, stalled, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 50));
    ac.abort(new Error('user went away'));
    const err = await rejects(pending, AbortError);
    assert.is(err.code, 'ABORT_ERR');
    assert.ok(stalled.destroyed, 'the input was destroyed');
    // already aborted: nothing happens at all
    await rejects(unpack(root, streamOf(head), { signal: AbortSignal.abort() }), AbortError);

    const src = scratchDir('safe-abort-src');
    try {
      buildRichTree(src);
      writeFileSync(`${src}/large`, Buffer.alloc(8 << 20)); // more than the stream buffers
      const ac2 = new AbortController();
      const stream = pack(src, { signal: ac2.signal });
      const read = (async () => {
        for await (const _ of stream) ac2.abort();
      })();
      await rejects(read, AbortError);
    } finally {
      removeDir(src);
    }
  }));

test.run();
