/**
 * Fixtures for the archive tests: scratch directories under /tmp/archive-*, a tree with every
 * entry type and metadata a layer carries, a digest of a tree that says everything a user would
 * notice (names, types, modes, owners, mtimes, contents, link targets, hard links, device numbers,
 * xattrs), helpers to craft raw tars (also hostile ones) and to read tars back.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import {
  chmodSync,
  linkSync,
  lchownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  AT,
  S,
  fstatatSync,
  lgetxattrSync,
  llistxattrSync,
  lsetxattrSync,
  mknodatSync,
  readlinkatSync,
  utimensatSync,
} from '@graphdriver/native';
import { BLOCK_SIZE, END_OF_ARCHIVE, encodeHeader, paddingFor, type EntryHeader } from '../src/archive/header.js';
import { readLayerTar, type TarEntry } from '../src/archive/tar-reader.js';

export const run = promisify(execFile);

/** A fresh directory /tmp/archive-<tag>-XXXXXX; remove it with rmSync(dir, {recursive, force}). */
export function scratchDir(tag: string): string {
  return mkdtempSync(`/tmp/archive-${tag}-`);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function setTimes(path: string, sec: number, nsec = 0): void {
  utimensatSync(AT.FDCWD, path, { sec, nsec }, { sec, nsec }, AT.SYMLINK_NOFOLLOW);
}

export function setXattr(path: string, name: string, value: Buffer | string): void {
  lsetxattrSync(path, name, typeof value === 'string' ? Buffer.from(value) : value);
}

export function mknod(path: string, type: 'char' | 'block' | 'fifo' | 'socket', mode: number, major = 0, minor = 0): void {
  const bits = { char: S.IFCHR, block: S.IFBLK, fifo: S.IFIFO, socket: S.IFSOCK }[type];
  mknodatSync(AT.FDCWD, path, bits | mode, major, minor);
  if (type !== 'socket') chmodSync(path, mode); // mknod applied the umask
}

/** A v2 file capability (VFS_CAP_REVISION_2, effective) with bytes >= 0x80: all caps permitted. */
export const CAPABILITY_V2 = Buffer.from('01000002' + 'ffffffff' + '00000000' + 'ff010000' + '00000000', 'hex');

/** system.posix_acl_access: user::rw-, user:1000:r--, group::r--, mask::r--, other::---. */
export const ACL_ACCESS = Buffer.from(
  '02000000' + '01000600ffffffff' + '02000400e8030000' + '04000400ffffffff' + '10000400ffffffff' + '20000000ffffffff',
  'hex',
);

/** Binary user xattr value: NUL, 0xff, 0x80, a newline and '=' (everything a naive PAX codec breaks). */
export const BINARY_VALUE = Buffer.from([0x00, 0xff, 0x80, 0x0a, 0x3d, 0x7f]);

export const LONG_COMPONENT = 'g'.repeat(200);
export const SPLITTABLE_PATH = `${'d'.repeat(60)}/${'e'.repeat(70)}/${'f'.repeat(90)}`;
export const UNICODE_NAME = 'ünïcødé-名前';

/**
 * Every entry type and every piece of metadata a layer carries. Times have nanoseconds (a tar
 * keeps seconds); directory times are set last. `a/sock` is a socket (not packed).
 */
export function buildRichTree(root: string): void {
  const p = (rel: string): string => `${root}/${rel}`;
  mkdirSync(root, { recursive: true });
  for (const d of ['a', 'a/b', 'sticky', 'sgid', 'hl', 'dev', 'd'.repeat(60), `${'d'.repeat(60)}/${'e'.repeat(70)}`]) {
    mkdirSync(p(d));
  }
  chmodSync(p('a/b'), 0o700);
  chmodSync(p('sticky'), 0o1777);
  chmodSync(p('sgid'), 0o2755);

  writeFileSync(p('a/empty'), '');
  writeFileSync(p('a/small'), 'hello\n');
  chmodSync(p('a/small'), 0o640);
  const big = Buffer.alloc(300 * 1024 + 7);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31 + 7) & 0xff;
  writeFileSync(p('a/b/big'), big);
  chmodSync(p('a/b/big'), 0o600);
  writeFileSync(p('suid'), 'x');
  writeFileSync(p('sgid/file'), 'y');
  writeFileSync(p('a/uid300k'), 'ids in octal');
  writeFileSync(p('a/uid3m'), 'ids in PAX');
  writeFileSync(p('a/acl'), 'acl');
  writeFileSync(p('a/old'), 'before 1970');
  writeFileSync(p(SPLITTABLE_PATH), 'ustar prefix');
  writeFileSync(p(LONG_COMPONENT), 'pax path');
  writeFileSync(p(UNICODE_NAME), 'utf-8 name');

  symlinkSync('../suid', p('a/rel'));
  symlinkSync('/etc/passwd', p('a/abs'));
  symlinkSync('nowhere', p('a/dangling'));
  symlinkSync('t'.repeat(150), p('a/longlink'));

  linkSync(p('a/small'), p('hl/small-link'));
  linkSync(p('a/b/big'), p('a/big-link'));

  mknod(p('dev/char'), 'char', 0o620, 1, 3);
  mknod(p('dev/block'), 'block', 0o660, 7, 200);
  mknod(p('dev/fifo'), 'fifo', 0o644);
  mknod(p('a/sock'), 'socket', 0o755);

  lchownSync(p('a/uid300k'), 300000, 300001);
  lchownSync(p('a/uid3m'), 3000000, 5);
  lchownSync(p('a/rel'), 1000, 1000);
  lchownSync(p('dev/fifo'), 42, 43);
  // chown clears set-id bits: set them after.
  chmodSync(p('suid'), 0o4755);
  chmodSync(p('sgid/file'), 0o2755);

  setXattr(p('a/small'), 'user.bin', BINARY_VALUE);
  setXattr(p('a/small'), 'trusted.t', 'tv');
  setXattr(p('suid'), 'security.capability', CAPABILITY_V2);
  setXattr(p('a/acl'), 'system.posix_acl_access', ACL_ACCESS);
  setXattr(p('a/b'), 'user.dirattr', 'd');
  setXattr(p('a/rel'), 'trusted.sl', 'on a symlink');

  let t = 1_600_000_000;
  const leaves = [
    'a/empty', 'a/small', 'a/b/big', 'suid', 'sgid/file', 'a/uid300k', 'a/uid3m', 'a/acl',
    SPLITTABLE_PATH, LONG_COMPONENT, UNICODE_NAME, 'a/rel', 'a/abs', 'a/dangling', 'a/longlink',
    'dev/char', 'dev/block', 'dev/fifo',
  ];
  for (const leaf of leaves) setTimes(p(leaf), t++, 123_456_789);
  setTimes(p('a/old'), -86_400 * 365, 0);
  // Directories last, deepest first, so creating their children does not move their times.
  const dirs = [`${'d'.repeat(60)}/${'e'.repeat(70)}`, 'd'.repeat(60), 'a/b', 'a', 'sticky', 'sgid', 'hl', 'dev'];
  for (const d of dirs) setTimes(p(d), t++, 987_654_321);
}

export interface DigestOptions {
  /** Compare times to the nanosecond (default: whole seconds, what a layer tar keeps). */
  nsec?: boolean;
  /** Leave out paths (relative, no leading './'). */
  exclude?: (rel: string) => boolean;
  /** Leave out xattrs by name. */
  excludeXattr?: (name: string) => boolean;
}

/**
 * One line per path under `root` (the root itself left out), sorted: type, mode, owner, mtime,
 * size and sha256 of regular files, link target, device numbers, xattrs (hex) and, for hard
 * links, the first path of the inode's group.
 */
export function treeDigest(root: string, opts: DigestOptions = {}): string[] {
  const records: Array<{ rel: string; ino: string; line: string }> = [];
  const walk = (rel: string): void => {
    const dir = rel === '' ? root : `${root}/${rel}`;
    for (const name of readdirSync(dir)) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      if (opts.exclude?.(childRel) === true) continue;
      const path = `${root}/${childRel}`;
      const st = fstatatSync(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
      const type = st.mode & S.IFMT;
      const t = opts.nsec === true ? `${st.mtime.sec}.${String(st.mtime.nsec).padStart(9, '0')}` : `${st.mtime.sec}`;
      const parts = [
        childRel,
        typeName(type),
        `mode=${(st.mode & 0o7777).toString(8)}`,
        `owner=${st.uid}:${st.gid}`,
        `mtime=${t}`,
      ];
      if (type === S.IFREG) {
        parts.push(`size=${st.size}`, `sha256=${createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)}`);
      }
      if (type === S.IFLNK) parts.push(`target=${readlinkatSync(AT.FDCWD, path)}`);
      if (type === S.IFCHR || type === S.IFBLK) parts.push(`dev=${st.rdevMajor},${st.rdevMinor}`);
      const xattrs = llistxattrSync(path)
        .filter((n) => opts.excludeXattr?.(n) !== true)
        .sort()
        .map((n) => `${n}=${lgetxattrSync(path, n).toString('hex')}`);
      if (xattrs.length > 0) parts.push(`xattrs={${xattrs.join(',')}}`);
      records.push({ rel: childRel, ino: type !== S.IFDIR && st.nlink > 1 ? `${st.dev}:${st.ino}` : '', line: parts.join(' ') });
      if (type === S.IFDIR) walk(childRel);
    }
  };
  walk('');
  const firstOfInode = new Map<string, string>();
  for (const r of [...records].sort((a, b) => (a.rel < b.rel ? -1 : 1))) {
    if (r.ino !== '' && !firstOfInode.has(r.ino)) firstOfInode.set(r.ino, r.rel);
  }
  return records
    .map((r) => (r.ino === '' ? r.line : `${r.line} hardlink-group=${firstOfInode.get(r.ino)}`))
    .sort();
}

function typeName(type: number): string {
  switch (type) {
    case S.IFREG: return 'file';
    case S.IFDIR: return 'dir';
    case S.IFLNK: return 'symlink';
    case S.IFCHR: return 'char';
    case S.IFBLK: return 'block';
    case S.IFIFO: return 'fifo';
    case S.IFSOCK: return 'socket';
    default: return `type-${type.toString(8)}`;
  }
}

export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A stream of `buf` in chunks of `chunkSize` bytes (to exercise entries split across chunks). */
export function streamOf(buf: Buffer, chunkSize = 64 * 1024): Readable {
  const chunks: Buffer[] = [];
  for (let off = 0; off < buf.length; off += chunkSize) chunks.push(buf.subarray(off, off + chunkSize));
  return Readable.from(chunks, { objectMode: false });
}

/** One entry of a crafted tar: header fields (defaults: root-owned, 0644, mtime 1e9) and data. */
export interface CraftEntry extends Partial<EntryHeader> {
  name: string;
  data?: Buffer | string;
}

/** A tar made of `entries` with our header encoder (it writes any name, also hostile ones). */
export function craftTar(entries: CraftEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
    const kind = e.kind ?? (e.name.endsWith('/') ? 'dir' : 'file');
    parts.push(
      encodeHeader({
        name: e.name,
        kind,
        mode: e.mode ?? (kind === 'dir' ? 0o755 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        size: data.length,
        mtime: e.mtime ?? 1_000_000_000,
        linkname: e.linkname ?? '',
        devmajor: e.devmajor ?? 0,
        devminor: e.devminor ?? 0,
        xattrs: e.xattrs ?? [],
      }),
      data,
      Buffer.alloc(paddingFor(data.length)),
    );
  }
  if (opts.end !== false) parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** A raw header block with any typeflag character (for sparse, volume and unknown entries). */
export function rawHeaderBlock(name: string, typeflag: string, size: number): Buffer {
  const block = encodeHeader({
    name, kind: 'file', mode: 0o644, uid: 0, gid: 0, size, mtime: 1_000_000_000,
    linkname: '', devmajor: 0, devminor: 0, xattrs: [],
  });
  block.write(typeflag, 156, 1, 'latin1');
  let sum = 8 * 0x20;
  for (let i = 0; i < BLOCK_SIZE; i++) if (i < 148 || i >= 156) sum += block[i] as number;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

/** A PAX `x` entry carrying `body` verbatim, followed by nothing (append the entry it applies to). */
export function rawPaxEntry(body: Buffer): Buffer {
  return Buffer.concat([rawHeaderBlock('PaxHeaders.0/x', 'x', body.length), body, Buffer.alloc(paddingFor(body.length))]);
}

/** The entries of a tar as our reader sees them, data included. */
export async function listTar(tar: Buffer): Promise<Array<TarEntry & { data: Buffer }>> {
  const out: Array<TarEntry & { data: Buffer }> = [];
  await readLayerTar(streamOf(tar), (entry) => {
    const chunks: Buffer[] = [];
    const rec = { ...entry, data: Buffer.alloc(0) };
    out.push(rec);
    return {
      write: (buf, offset, length) => void chunks.push(Buffer.from(buf.subarray(offset, offset + length))),
      end: () => {
        rec.data = Buffer.concat(chunks);
      },
      abort: () => undefined,
    };
  });
  return out;
}

/** Open file descriptors of this process (to prove an operation closed what it opened). */
export function openFdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Everything under `base` but `except` (a subdirectory), as a digest: what must not change. */
export function outsideDigest(base: string, except: string): string[] {
  return treeDigest(base, { nsec: true, exclude: (rel) => rel === except });
}

/**
 * Await `promise`, which must reject with an instance of `type` whose message matches `message`;
 * returns the error for further checks.
 */
export async function rejects<E extends Error>(
  promise: Promise<unknown>,
  type: abstract new (...args: never[]) => E,
  message?: RegExp,
): Promise<E> {
  let settled = false;
  try {
    await promise;
    settled = true;
  } catch (err) {
    if (!(err instanceof type)) {
      throw new Error(`expected a ${type.name}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`, { cause: err });
    }
    if (message !== undefined && !message.test(err.message)) {
      throw new Error(`expected a ${type.name} matching ${message}, got: ${err.message}`, { cause: err });
    }
    return err;
  }
  if (settled) throw new Error(`expected a ${type.name}, but the operation succeeded`);
  throw new Error('unreachable');
}
