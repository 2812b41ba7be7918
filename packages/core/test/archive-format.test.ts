/**
 * The byte formats on their own: PAX records (binary-safe, strict) and the header decisions Go's
 * archive/tar makes for moby (USTAR while everything fits, PAX otherwise), read back by our reader
 * and GNU tar.
 */
import { writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidArchiveError } from '../src/errors.js';
import { BLOCK_SIZE, encodeHeader, type EntryHeader } from '../src/archive/header.js';
import { decodePaxRecords, encodePaxRecords, paxTime } from '../src/archive/pax.js';
import { craftTar, listTar, removeDir, run, scratchDir } from './fixtures-archive.js';

const file = (over: Partial<EntryHeader>): EntryHeader => ({
  name: 'f', kind: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_700_000_000,
  linkname: '', devmajor: 0, devminor: 0, xattrs: [], ...over,
});
const isInvalidArchive = (err: unknown): boolean => err instanceof InvalidArchiveError;
const field = (block: Buffer, off: number, len: number): string => block.toString('latin1', off, off + len);

test('PAX records carry any bytes and count their own length across digit carries', () => {
  const weird = Buffer.from([0x00, 0x0a, 0x3d, 0xff, 0x80, 0x20]);
  for (const len of [0, 1, 85, 86, 87, 88, 89, 990, 991, 992, 993, 994, 995, 996]) {
    const value = Buffer.alloc(len, 0x61);
    const body = encodePaxRecords([['k', value], ['SCHILY.xattr.user.b', weird]]);
    const back = decodePaxRecords(body);
    assert.equal(back.get('k'), value);
    assert.equal(back.get('SCHILY.xattr.user.b'), weird);
    const first = Number(body.toString('latin1', 0, body.indexOf(0x20)));
    assert.is(first, 'k'.length + len + 3 + String(first).length);
  }
});

test('PAX decoding is strict and times keep nanoseconds, also before 1970', () => {
  assert.throws(() => decodePaxRecords(Buffer.from('9 a=b\n')), isInvalidArchive);
  assert.throws(() => decodePaxRecords(Buffer.from('06 =b\n')), isInvalidArchive);
  assert.throws(() => decodePaxRecords(Buffer.from('5 ab\n')), isInvalidArchive);
  assert.equal(decodePaxRecords(Buffer.from('6 a=b\n\0\0\0')).get('a'), Buffer.from('b'));
  const t = (v: string) => paxTime(new Map([['mtime', Buffer.from(v)]]), 'mtime');
  assert.equal(t('1700000000.123456789123'), { sec: 1_700_000_000, nsec: 123_456_789 });
  assert.equal(t('12.5'), { sec: 12, nsec: 500_000_000 });
  assert.equal(t('-1.25'), { sec: -2, nsec: 750_000_000 });
  assert.equal(t('-7'), { sec: -7, nsec: 0 });
  assert.throws(() => t('1e9'), isInvalidArchive);
});

test('USTAR while everything fits: octal fields as Go formats them, ids up to 2097151', () => {
  const block = encodeHeader(file({ uid: 300_000, gid: 2_097_151, size: 5, mode: 0o4755 }));
  assert.is(block.length, BLOCK_SIZE);
  assert.is(field(block, 100, 8), '0004755\0');
  assert.is(field(block, 108, 8), '1111740\0');
  assert.is(field(block, 116, 8), '7777777\0');
  assert.is(field(block, 124, 12), '00000000005\0');
  assert.is(field(block, 156, 1), '0');
  assert.is(field(block, 257, 8), 'ustar\x0000');
  assert.is(field(block, 265, 32), '\0'.repeat(32), 'no uname');
  assert.is(field(block, 329, 8), '0000000\0');
  assert.match(field(block, 148, 8), /^[0-7]{6}\0 $/);
});

test('PAX when something does not fit: big ids, 8 GiB, long or non-ASCII names, xattrs', () => {
  const uid = encodeHeader(file({ name: 'd/f', uid: 2_097_152 }));
  assert.is(uid.length, 3 * BLOCK_SIZE);
  assert.is(field(uid, 0, 16), 'd/PaxHeaders.0/f');
  assert.is(field(uid, 156, 1), 'x');
  assert.match(uid.toString('latin1', 512, 1024), /^15 uid=2097152\n\0/);
  assert.is(field(uid, 1024 + 108, 8), '0000000\0', 'the main header says 0 where PAX has the value');
  const big = encodeHeader(file({ size: 8 * 1024 ** 3 }));
  assert.match(big.toString('latin1', 512, 1024), /^19 size=8589934592\n/);
  const split = encodeHeader(file({ name: `${'a'.repeat(150)}/${'b'.repeat(99)}` }));
  assert.is(split.length, BLOCK_SIZE, 'a long name that splits stays USTAR');
  assert.is(field(split, 345, 150), 'a'.repeat(150));
  const uni = encodeHeader(file({ name: 'dir/ü' }));
  assert.is(uni.length, 3 * BLOCK_SIZE);
  assert.is(field(uni, 0, 16), 'dir/PaxHeaders.0');
  assert.is(field(uni, 1024, 5), 'dir/\0', 'non-ASCII dropped from the fixed field, as Go does');
  const dir = encodeHeader(file({ name: 'a/b/', kind: 'dir', xattrs: [['user.x', Buffer.from([0xff])]] }));
  assert.is(field(dir, 0, 17), 'a/b/PaxHeaders.0\0');
  assert.ok(dir.subarray(512, 1024).includes(Buffer.from('SCHILY.xattr.user.x=\xff\n', 'latin1')));
});

test('our reader and GNU tar read the crafted headers back', async () => {
  const tar = craftTar([
    { name: 'big-ids', uid: 4_000_000, gid: 3_000_000, data: 'x' },
    { name: `${'n'.repeat(120)}/${'m'.repeat(120)}`, data: 'long' },
    { name: 'l', kind: 'symlink', linkname: 'z'.repeat(300) },
    { name: 'x', xattrs: [['user.bin', Buffer.from([0, 0xff, 0x0a])]], mtime: -5 },
  ]);
  const entries = await listTar(tar);
  assert.equal(entries.map((e) => [e.name.length, e.uid, e.gid, e.linkname.length, e.mtime.sec]), [
    [7, 4_000_000, 3_000_000, 0, 1_000_000_000],
    [241, 0, 0, 0, 1_000_000_000],
    [1, 0, 0, 300, 1_000_000_000],
    [1, 0, 0, 0, -5],
  ]);
  assert.equal(entries[3]?.xattrs, [['user.bin', Buffer.from([0, 0xff, 0x0a])]]);
  const dir = scratchDir('format');
  try {
    writeFileSync(`${dir}/t.tar`, tar);
    const { stdout, stderr } = await run('tar', ['-tvf', `${dir}/t.tar`, '--numeric-owner']);
    assert.is(stderr, '');
    assert.match(stdout, /4000000\/3000000/);
    assert.match(stdout, new RegExp(`${'n'.repeat(120)}/${'m'.repeat(120)}\n`));
  } finally {
    removeDir(dir);
  }
});

test.run();
