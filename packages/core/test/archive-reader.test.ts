/**
 * The tar reader on its own (tar-reader.ts, header-read.ts): framing whatever the chunk sizes,
 * a 1 GiB entry streamed in bounded memory, checksums (unsigned and signed), GNU base-256 numbers,
 * every header flavour GNU tar writes (v7, ustar, oldgnu, gnu, posix) unpacked identically,
 * truncation and garbage as InvalidArchiveErrors that say where, sparse and unknown types refused
 * by name, abort.
 */
import {
  chmodSync,
  closeSync,
  createReadStream,
  ftruncateSync,
  lchownSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArchiveError } from '../src/errors.js';
import { AbortError, listTar as listTarPublic, unpack } from '../src/archive/index.js';
import { BLOCK_SIZE, encodeHeader } from '../src/archive/header.js';
import { encodePaxRecords } from '../src/archive/pax.js';
import { TarFramer, readLayerTar, type DataSink, type TarEntry } from '../src/archive/tar-reader.js';
import {
  craftTar,
  mknod,
  rawHeaderBlock,
  rawPaxEntry,
  rejects,
  removeDir,
  run,
  scratchDir,
  setTimes,
  setXattr,
  streamOf,
  treeDigest,
} from './fixtures-archive.js';

const TAIL = Buffer.alloc(2 * BLOCK_SIZE);

/** Recompute a header block's checksum (unsigned, or the signed sum old tars wrote). */
function reChecksum(block: Buffer, signed = false, delta = 0): Buffer {
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    if (i >= 148 && i < 156) continue;
    const c = block[i] as number;
    sum += signed && c >= 0x80 ? c - 256 : c;
  }
  block.write(`${(sum + delta).toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

interface Parsed {
  entries: Array<Omit<TarEntry, 'xattrs'> & { xattrs: string[]; data: string; writes: number }>;
}

/** Feed `tar` to a TarFramer in chunks of `chunk` bytes; data is copied, writes counted. */
function frame(tar: Buffer, chunk: number): Parsed {
  const entries: Parsed['entries'] = [];
  const framer = new TarFramer((entry) => {
    const data = Buffer.alloc(entry.kind === 'file' ? entry.size : 0);
    let fill = 0;
    const rec = {
      ...entry,
      xattrs: entry.xattrs.map(([n, v]) => `${n}=${v.toString('hex')}`),
      data: '',
      /** Counted for files a sink gets in one write (bigger ones come in as many pieces as chunks). */
      writes: 0,
    };
    const counted = entry.size <= 64 * 1024;
    entries.push(rec);
    const sink: DataSink = {
      write(buf, offset, length) {
        buf.copy(data, fill, offset, offset + length);
        fill += length;
        if (counted) rec.writes++;
      },
      end() {
        assert.is(fill, data.length, `all data of ${entry.name} arrived before end()`);
        rec.data = data.toString('base64');
      },
      abort() {
        throw new Error('abort() on a successful read');
      },
    };
    return sink;
  });
  for (let off = 0; off < tar.length; off += chunk) framer.write(tar.subarray(off, Math.min(off + chunk, tar.length)));
  framer.end();
  return { entries };
}

/** A tree with what every GNU tar format can carry, plus `extra` for the formats that can do more. */
function buildFormatTree(root: string, extra: 'v7' | 'ustar' | 'gnu' | 'posix'): void {
  const p = (rel: string): string => `${root}/${rel}`;
  mkdirSync(p('a/b'), { recursive: true });
  chmodSync(p('a/b'), 0o700);
  writeFileSync(p('a/empty'), '');
  writeFileSync(p('a/small'), 'hello\n');
  chmodSync(p('a/small'), 0o640);
  const blockSized = Buffer.alloc(512, 0x62);
  writeFileSync(p('a/b/512'), blockSized);
  const odd = Buffer.alloc(70 * 1024 + 3);
  for (let i = 0; i < odd.length; i++) odd[i] = (i * 13 + 5) & 0xff;
  writeFileSync(p('a/b/70k'), odd);
  writeFileSync(p('owned'), 'o');
  lchownSync(p('owned'), 1000, 1001);
  writeFileSync(p('suid'), 's');
  chmodSync(p('suid'), 0o4755);
  symlinkSync('../owned', p('a/rel'));
  linkSync(p('a/small'), p('hard'));
  const leaves = ['a/empty', 'a/small', 'a/b/512', 'a/b/70k', 'owned', 'suid', 'a/rel'];
  if (extra !== 'v7') {
    mkdirSync(p('dev'));
    mknod(p('dev/char'), 'char', 0o620, 1, 3);
    mknod(p('dev/block'), 'block', 0o660, 7, 200);
    mknod(p('dev/fifo'), 'fifo', 0o644);
    mkdirSync(p(`${'p'.repeat(80)}`));
    writeFileSync(p(`${'p'.repeat(80)}/${'q'.repeat(90)}`), 'split into prefix and name');
    leaves.push('dev/char', 'dev/block', 'dev/fifo', `${'p'.repeat(80)}/${'q'.repeat(90)}`);
  }
  if (extra === 'gnu' || extra === 'posix') {
    writeFileSync(p('l'.repeat(200)), 'long name');
    symlinkSync('t'.repeat(150), p('a/longlink'));
    writeFileSync(p('big-ids'), 'ids beyond 7 octal digits');
    lchownSync(p('big-ids'), 3_000_000, 4_000_000);
    writeFileSync(p('old'), 'before 1970');
    leaves.push('l'.repeat(200), 'a/longlink', 'big-ids');
  }
  if (extra === 'posix') {
    writeFileSync(p('ünïcødé'), 'utf-8 name');
    setXattr(p('a/small'), 'user.bin', Buffer.from([0, 0xff, 0x80, 0x0a, 0x3d]));
    setXattr(p('suid'), 'security.capability', Buffer.from('0100000200200000000000000000000000000000', 'hex'));
    leaves.push('ünïcødé');
  }
  let t = 1_600_000_000;
  for (const leaf of leaves) setTimes(p(leaf), t++, 123_456_789);
  if (extra === 'gnu' || extra === 'posix') setTimes(p('old'), -86_400 * 365, 0);
  for (const d of ['a/b', 'a', ...(extra === 'v7' ? [] : ['dev', 'p'.repeat(80)])]) setTimes(p(d), t++, 0);
}

/** The typeflags and magics of a tar's header blocks (walking the framing as a check of our own). */
function headerShapes(tar: Buffer): Array<{ type: string; magic: string; uidByte: number; prefix: boolean }> {
  const out = [];
  for (let off = 0; off + BLOCK_SIZE <= tar.length; ) {
    const h = tar.subarray(off, off + BLOCK_SIZE);
    if (h.every((c) => c === 0)) break;
    const size = parseInt(h.toString('latin1', 124, 136).replace(/[\0 ]/g, '') || '0', 8);
    const type = h.toString('latin1', 156, 157);
    out.push({ type, magic: h.toString('latin1', 257, 265), uidByte: h[108] as number, prefix: h[345] !== 0 && h[257] === 0x75 });
    const hasData = !['1', '2', '3', '4', '5', '6'].includes(type);
    off += BLOCK_SIZE + (hasData ? Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE : 0);
  }
  return out;
}

const FORMATS = [
  { format: 'v7', tree: 'v7', expect: (s: ReturnType<typeof headerShapes>) => s.some((h) => h.type === '\0' && h.magic === '\0'.repeat(8)) },
  { format: 'ustar', tree: 'ustar', expect: (s: ReturnType<typeof headerShapes>) => s.some((h) => h.prefix) && s.every((h) => h.magic === 'ustar\x0000') },
  { format: 'oldgnu', tree: 'gnu', expect: (s: ReturnType<typeof headerShapes>) => s.some((h) => h.type === 'L') && s.some((h) => h.type === 'K') && s.some((h) => h.uidByte === 0x80) },
  { format: 'gnu', tree: 'gnu', expect: (s: ReturnType<typeof headerShapes>) => s.some((h) => h.type === 'L') && s.some((h) => h.type === 'K') && s.some((h) => h.uidByte === 0x80) && s.every((h) => h.magic === 'ustar  \0') },
  { format: 'posix', tree: 'posix', expect: (s: ReturnType<typeof headerShapes>) => s.some((h) => h.type === 'x') },
] as const;

for (const { format, tree, expect } of FORMATS) {
  test(`GNU tar --format=${format}: every header flavour it writes is unpacked identically`, async () => {
    const base = scratchDir(`reader-${format}`);
    try {
      buildFormatTree(`${base}/src`, tree);
      const xattrs = format === 'posix' ? ['--xattrs', '--xattrs-include=*'] : [];
      await run('tar', ['-c', `--format=${format}`, '--numeric-owner', ...xattrs, '-f', `${base}/t.tar`, '-C', `${base}/src`, '.']);
      const tar = readFileSync(`${base}/t.tar`);
      assert.ok(expect(headerShapes(tar)), `GNU tar wrote the ${format} header shapes this test is about`);
      mkdirSync(`${base}/dst`);
      await unpack(`${base}/dst`, createReadStream(`${base}/t.tar`));
      const nsec = format === 'posix';
      assert.equal(treeDigest(`${base}/dst`, { nsec }), treeDigest(`${base}/src`, { nsec }));
      // and the framing does not depend on how the bytes arrive
      const whole = frame(tar, tar.length);
      assert.equal(frame(tar, 509), whole);
    } finally {
      removeDir(base);
    }
  });
}

test('framing: the same entries and data whatever the chunk size (1 to 1024 bytes), small files in one write', async () => {
  const base = scratchDir('reader-chunks');
  try {
    buildFormatTree(`${base}/gnu`, 'gnu');
    buildFormatTree(`${base}/posix`, 'posix');
    await run('tar', ['-c', '--format=gnu', '-f', `${base}/gnu.tar`, '-C', `${base}/gnu`, '.']);
    await run('tar', ['-c', '--format=posix', '--xattrs', '--xattrs-include=*', '-f', `${base}/posix.tar`, '-C', `${base}/posix`, '.']);
    const crafted = Buffer.concat([
      craftTar([
        { name: 'd/' },
        { name: 'd/one', data: 'x' },
        { name: 'd/511', data: Buffer.alloc(511, 1) },
        { name: 'd/513', data: Buffer.alloc(513, 2) },
        { name: 'x'.repeat(300), data: 'pax path', xattrs: [['user.v', Buffer.alloc(700, 0xee)]] },
        { name: 'sym', kind: 'symlink', linkname: 'y'.repeat(400) },
      ], { end: false }),
      TAIL,
      Buffer.alloc(8192), // record padding after the end marker, as GNU tar writes
    ]);
    for (const tar of [readFileSync(`${base}/gnu.tar`), readFileSync(`${base}/posix.tar`), crafted]) {
      const whole = frame(tar, tar.length);
      assert.ok(whole.entries.length >= 6);
      for (const e of whole.entries) {
        if (e.kind === 'file' && e.size > 0 && e.size <= 64 * 1024) assert.is(e.writes, 1, `${e.name}: one write`);
      }
      for (let chunk = 1; chunk <= 1024; chunk++) {
        const got = frame(tar, chunk);
        if (JSON.stringify(got) !== JSON.stringify(whole)) assert.equal(got, whole, `chunks of ${chunk} bytes`);
      }
    }
  } finally {
    removeDir(base);
  }
});

test('a 512-byte-aligned 1 GiB entry streams through in bounded memory, every byte in place', async () => {
  const size = 1 << 30;
  const pattern = Buffer.alloc(1 << 20);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 2654435761) >>> 24;
  const header = encodeHeader({
    name: 'huge', kind: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 1, linkname: '', devmajor: 0, devminor: 0, xattrs: [],
  });
  const after = craftTar([{ name: 'after', data: 'tail' }]);
  let sent = 0;
  const input = new Readable({
    read() {
      if (sent === 0) this.push(header);
      if (sent < size) {
        sent += pattern.length;
        this.push(pattern);
      } else {
        this.push(after);
        this.push(null);
      }
    },
  });
  const rssBefore = process.resourceUsage().maxRSS;
  let got = 0;
  let writes = 0;
  const names: string[] = [];
  await readLayerTar(input, (entry) => {
    names.push(entry.name);
    if (entry.name !== 'huge') return null;
    return {
      write(buf, offset, length) {
        // compare with the pattern where this piece falls (it may wrap around its end)
        let done = 0;
        while (done < length) {
          const p = (got + done) % pattern.length;
          const n = Math.min(length - done, pattern.length - p);
          if (buf.compare(pattern, p, p + n, offset + done, offset + done + n) !== 0) throw new Error(`byte mismatch at ${got + done}`);
          done += n;
        }
        got += length;
        writes++;
      },
      end() {},
      abort() {},
    };
  });
  assert.is(got, size);
  assert.ok(writes >= 1024, 'data came in pieces, not as one buffer');
  assert.equal(names, ['huge', 'after']);
  const grownMiB = (process.resourceUsage().maxRSS - rssBefore) / 1024;
  assert.ok(grownMiB < 64, `peak RSS grew by ${grownMiB.toFixed(0)} MiB streaming 1 GiB`);
});

test('checksums: unsigned and signed sums are accepted, anything else is a corrupt header', () => {
  const block = (): Buffer => {
    const b = rawHeaderBlock('dir/xx-name', '0', 0);
    b.write('dir/\xfc\xff-name', 0, 'latin1'); // bytes >= 0x80: signed and unsigned sums differ
    return b;
  };
  const parse = (b: Buffer): TarEntry[] => {
    const seen: TarEntry[] = [];
    // once where the block is 4-byte aligned in memory (summed a word at a time), once where it is not
    for (const shift of [0, 1]) {
      const f = new TarFramer((e) => (seen.push(e), null));
      f.write(Buffer.concat([Buffer.alloc(shift), b, TAIL]).subarray(shift));
      f.end();
    }
    assert.equal(seen[0], seen[1]);
    return seen.slice(1);
  };
  assert.is(parse(reChecksum(block()))[0]?.size, 0);
  assert.is(parse(reChecksum(block(), true)).length, 1, 'signed sum (old Sun tar) accepted');
  assert.throws(() => parse(reChecksum(block(), false, 1)), (e: unknown) => e instanceof InvalidArchiveError && /checksum/.test(e.message));
  // a later header: the message says where, and after which entry
  const two = craftTar([{ name: 'first', data: 'x' }, { name: 'second', data: 'y' }]);
  two[1034] = (two[1034] as number) ^ 0x20;
  const f = new TarFramer(() => null);
  assert.throws(
    () => f.write(two),
    (e: unknown) => e instanceof InvalidArchiveError && /header block at byte 1024 has a wrong checksum, after entry "first"/.test(e.message),
  );
});

test('GNU base-256 numbers: big and negative values read exactly, overflow refused', () => {
  const b = rawHeaderBlock('ids', '0', 0);
  b.fill(0, 108, 124);
  b[108] = 0x80; // uid 5_000_000_000 (does not fit 7 octal digits nor 32 bits)
  b.writeUIntBE(5_000_000_000, 110, 6);
  b[116] = 0x80;
  b.writeUIntBE(3_000_000, 121, 3);
  b.fill(0xff, 136, 148); // mtime -1 - 0x... : all ones is -1
  b.writeUInt32BE(0xfffffffe, 144); // -2
  const seen: TarEntry[] = [];
  const f = new TarFramer((e) => (seen.push(e), null));
  f.write(Buffer.concat([reChecksum(b), TAIL]));
  f.end();
  assert.equal([seen[0]?.uid, seen[0]?.gid, seen[0]?.mtime], [5_000_000_000, 3_000_000, { sec: -2, nsec: 0 }]);
  const over = rawHeaderBlock('over', '0', 0);
  over.fill(0xff, 124, 136);
  over[124] = 0x80; // a size beyond 2^53
  assert.throws(
    () => new TarFramer(() => null).write(reChecksum(over)),
    (e: unknown) => e instanceof InvalidArchiveError && e.entry === 'over' && /size/.test(e.message),
  );
});

test('truncated input is an InvalidArchiveError that says where: which entry, data or padding or header', async () => {
  const tar = craftTar([{ name: 'dir/' }, { name: 'dir/file', data: Buffer.alloc(2000, 7) }, { name: 'next', data: 'n' }]);
  const cut = async (at: number): Promise<InvalidArchiveError> =>
    rejects(readLayerTar(streamOf(tar.subarray(0, at), 700), () => null), InvalidArchiveError);
  let err = await cut(1024 + 100);
  assert.is(err.entry, 'dir/file');
  assert.match(err.message, /ends inside this entry's data \(100 of 2000 bytes\)/);
  err = await cut(1024 + 2000 + 10);
  assert.is(err.entry, 'dir/file');
  assert.match(err.message, /padding/);
  err = await cut(1024 + 2048 + 300);
  assert.match(err.message, /truncated inside a header block \(at byte 3072\), after entry "dir\/file"/);
  err = await cut(1024 + 2048 + 1024 + 512 + 100);
  assert.match(err.message, /inside its end-of-archive marker|truncated/);
  // a PAX header cut short names itself
  const pax = Buffer.concat([rawPaxEntry(encodePaxRecords([['path', Buffer.alloc(600, 0x61)]])), TAIL]);
  err = await rejects(readLayerTar(streamOf(pax.subarray(0, 700)), () => null), InvalidArchiveError, /PAX extended header/);
  assert.is(err.entry, 'PaxHeaders.0/x');
  // ends at an entry boundary, or after one zero block: a complete tar, as Go reads it
  assert.is((await listTarPublic(streamOf(tar.subarray(0, 1024 + 2048 + 1024)))).length, 3);
  assert.is((await listTarPublic(streamOf(tar.subarray(0, tar.length - 512)))).length, 3);
});

test('non-tar input: compressed layers are named as such, garbage and text are not tars', async () => {
  const good = craftTar([{ name: 'f', data: 'x'.repeat(5000) }]);
  await rejects(readLayerTar(streamOf(gzipSync(good), 1), () => null), InvalidArchiveError, /gzip-compressed/);
  await rejects(readLayerTar(streamOf(gzipSync(Buffer.alloc(0))), () => null), InvalidArchiveError, /gzip-compressed/);
  const magic = (bytes: number[]): Buffer => Buffer.concat([Buffer.from(bytes), Buffer.alloc(2000, 0x41)]);
  await rejects(readLayerTar(streamOf(magic([0x28, 0xb5, 0x2f, 0xfd])), () => null), InvalidArchiveError, /zstd-compressed/);
  await rejects(readLayerTar(streamOf(magic([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0])), () => null), InvalidArchiveError, /xz-compressed/);
  await rejects(readLayerTar(streamOf(magic([0x42, 0x5a, 0x68, 0x39])), () => null), InvalidArchiveError, /bzip2-compressed/);
  await rejects(readLayerTar(streamOf(Buffer.from('hello\n'.repeat(200))), () => null), InvalidArchiveError, /not a valid tar: the first header/);
  await rejects(readLayerTar(streamOf(Buffer.from('short')), () => null), InvalidArchiveError, /less than one header block/);
  // a zero block followed by data is not an end marker (Go: ErrHeader)
  const notEnd = Buffer.concat([Buffer.alloc(512), good]);
  await rejects(readLayerTar(streamOf(notEnd), () => null), InvalidArchiveError, /zero block at byte 0 is followed by a non-zero block/);
});

test('an object-mode input of Uint8Arrays is read like a byte stream', async () => {
  const tar = craftTar([{ name: 'u8', data: 'bytes' }]);
  const pieces = [new Uint8Array(tar.subarray(0, 700)), new Uint8Array(tar.subarray(700))];
  const entries = await listTarPublic(Readable.from(pieces));
  assert.equal(entries.map((e) => [e.name, e.size]), [['u8', 5]]);
});

test('after the end marker the rest is drained and ignored; header-only types carry no data whatever their size says', async () => {
  const garbage = Buffer.concat([craftTar([{ name: 'a', data: 'a' }]), Buffer.from('trailing junk that is not a tar'.repeat(50))]);
  const input = streamOf(garbage, 100);
  assert.equal((await listTarPublic(input)).map((e) => e.name), ['a']);
  assert.ok(input.readableEnded, 'the input was read to its end');
  // a symlink whose size field says 5 (Go ignores it): the next header follows directly
  const sym = encodeHeader({ name: 's', kind: 'symlink', mode: 0o777, uid: 0, gid: 0, size: 0, mtime: 1, linkname: 't', devmajor: 0, devminor: 0, xattrs: [] });
  sym.write('00000000005\0', 124, 'latin1');
  const tar = Buffer.concat([reChecksum(sym), craftTar([{ name: 'after', data: 'z' }])]);
  const entries = await listTarPublic(streamOf(tar));
  assert.equal(entries.map((e) => [e.name, e.kind, e.size]), [['s', 'symlink', 5], ['after', 'file', 1]]);
  // a pre-POSIX '\0' entry named with a trailing slash is a directory
  const old = Buffer.concat([reChecksum(rawHeaderBlock('olddir/', '\0', 0)), TAIL]);
  assert.equal((await listTarPublic(streamOf(old))).map((e) => e.kind), ['dir']);
});

test('GNU long names and PAX: long name after PAX path (Go order), global headers checked then ignored, 1 MiB limit', async () => {
  const longName = 'n'.repeat(300);
  const body = Buffer.from(`${longName}\0`);
  const gnuLong = Buffer.concat([rawHeaderBlock('././@LongLink', 'L', body.length), body, Buffer.alloc(512 - body.length)]);
  const pax = rawPaxEntry(encodePaxRecords([['path', Buffer.from('from-pax')], ['uid', Buffer.from('7000000')]]));
  const tar = Buffer.concat([pax, gnuLong, craftTar([{ name: 'short', data: 'd' }])]);
  const [e] = await listTarPublic(streamOf(tar, 333));
  assert.equal([e?.name, e?.uid], [longName, 7_000_000]);
  const badGlobal = Buffer.from('12 path=ab\n');
  const g = Buffer.concat([rawHeaderBlock('g', 'g', badGlobal.length), badGlobal, Buffer.alloc(512 - badGlobal.length), TAIL]);
  await rejects(listTarPublic(streamOf(g)), InvalidArchiveError, /record length/);
  const huge = Buffer.concat([rawHeaderBlock('PaxHeaders.0/h', 'x', 2 << 20), TAIL]);
  const err = await rejects(listTarPublic(streamOf(huge)), InvalidArchiveError, /PAX extended header of 2097152 bytes/);
  assert.is(err.entry, 'PaxHeaders.0/h');
});

test('sparse files (GNU S entries and PAX GNU.sparse records, as GNU tar writes them) and unknown types are refused by name', async () => {
  const base = scratchDir('reader-sparse');
  try {
    mkdirSync(`${base}/src`);
    // 4 MiB of which one 4 KiB block holds data: the rest are holes
    const fd = openSync(`${base}/src/holes`, 'w');
    try {
      ftruncateSync(fd, 4 << 20);
      writeSync(fd, Buffer.alloc(4096, 0x5a), 0, 4096, 300 * 4096);
    } finally {
      closeSync(fd);
    }
    for (const [format, why] of [['gnu', /unsupported tar entry type 'S' \(GNU sparse file/], ['posix', /sparse files are not supported/]] as const) {
      await run('tar', ['-c', '--sparse', `--format=${format}`, '-f', `${base}/${format}.tar`, '-C', `${base}/src`, 'holes']);
      const err = await rejects(listTarPublic(createReadStream(`${base}/${format}.tar`)), InvalidArchiveError, why);
      assert.match(err.entry ?? '', /holes|GNUSparseFile/);
    }
    const vol = Buffer.concat([rawHeaderBlock('label', 'V', 0), TAIL]);
    const err = await rejects(listTarPublic(streamOf(vol)), InvalidArchiveError, /unsupported tar entry type 'V' \(GNU volume label\)/);
    assert.is(err.entry, 'label');
    const odd = Buffer.concat([rawHeaderBlock('what', 'Q', 0), TAIL]);
    await rejects(listTarPublic(streamOf(odd)), InvalidArchiveError, /unsupported tar entry type 'Q' \(unknown\)/);
  } finally {
    removeDir(base);
  }
});

test('abort: the read rejects with AbortError, the current sink is aborted and the input destroyed', async () => {
  const head = craftTar([{ name: 'big', data: Buffer.alloc(1 << 20) }], { end: false });
  const stalled = new Readable({ read() {} });
  stalled.push(head.subarray(0, 4096));
  const ac = new AbortController();
  const calls: string[] = [];
  const pending = readLayerTar(
    stalled,
    () => ({
      write: () => void calls.push('write'),
      end: () => void calls.push('end'),
      abort: () => void calls.push('abort'),
    }),
    { signal: ac.signal },
  );
  await new Promise((r) => setTimeout(r, 30));
  ac.abort();
  await rejects(pending, AbortError);
  assert.equal(calls, ['write', 'abort'], 'partial data went to the sink, then abort (a 1 MiB file is not gathered)');
  assert.ok(stalled.destroyed);
});

test('the tar of the demo: listTar gives each entry’s metadata, xattrs binary-safe', async () => {
  const tar = craftTar([
    { name: 'etc/', mode: 0o755 },
    { name: 'etc/motd', data: 'hi\n', uid: 1000, gid: 1000, mode: 0o4755, xattrs: [['security.capability', Buffer.from([1, 0, 0, 2, 0xff])]] },
    { name: 'etc/link', kind: 'link', linkname: 'etc/motd' },
  ]);
  const entries = await listTarPublic(streamOf(tar, 100));
  assert.equal(entries.map((e) => [e.name, e.kind, e.mode.toString(8), e.uid, e.size, e.linkname]), [
    ['etc/', 'dir', '755', 0, 0, ''],
    ['etc/motd', 'file', '4755', 1000, 3, ''],
    ['etc/link', 'link', '644', 0, 0, 'etc/motd'],
  ]);
  assert.equal(entries[1]?.xattrs, [['security.capability', Buffer.from([1, 0, 0, 2, 0xff])]]);
});

test.run();
