/**
 * Tree digests: one line per entry of a directory tree (name, type, mode with setuid/setgid/sticky,
 * owner, size, content hash, xattrs with binary values, symlink target, device numbers, which
 * entries are hard links of one another, optionally whole-second mtimes) and a sha256 over the
 * lines. Two trees with equal digests look the same to a container; when they differ,
 * `diffDigests` names the entries that do, so a failing round trip says what it lost.
 *
 * Hard links are recorded as groups, not inode numbers: each linked entry names the first path
 * (in byte order) of its inode within the tree, so a copy with the same link structure has the same
 * digest.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import { lgetxattrSync, llistxattrSync } from '@graphdriver/native';

export interface DigestOptions {
  /** Paths (relative, `a/b`) to leave out with everything below them. Default: `lost+found` at the top. */
  exclude?: readonly string[];
  /** Record mtimes in whole seconds (not for the root, whose mtime writing into the tree changes). Default false. */
  mtime?: boolean;
  /** Xattr names to leave out (`security.selinux` is always left out: the host's policy sets it). */
  excludeXattrs?: readonly string[];
  /** Record the root directory's mode and owner. Default true. */
  root?: boolean;
  /**
   * Full paths of files recorded without their content (`size=N live`): the backing files of attached
   * loop devices, whose bytes the device's own filesystem (a journal, a thin pool's metadata commit)
   * changes at any time - and which can be 100G sparse files nobody wants to read.
   */
  liveFiles?: ReadonlySet<string>;
}

export interface DigestEntry {
  /** `/` for the root, `/a/b` below it. */
  path: string;
  /** The entry as one comparable line. */
  line: string;
}

export interface TreeDigest {
  /** sha256 (hex) over all lines. */
  digest: string;
  entries: DigestEntry[];
}

const ALWAYS_EXCLUDED_XATTRS = new Set(['security.selinux']);

function typeChar(st: BigIntStats): string {
  if (st.isDirectory()) return 'd';
  if (st.isFile()) return 'f';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  return 's';
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

function xattrsOf(path: string, excluded: ReadonlySet<string>): string {
  let names: string[];
  try {
    names = llistxattrSync(path);
  } catch (err) {
    // Filesystems without xattr support (and symlinks on some) have none to compare.
    if ((err as { code?: string }).code === 'ENOTSUP' || (err as { code?: string }).code === 'EOPNOTSUPP') return '';
    throw err;
  }
  return names
    .filter((n) => !excluded.has(n))
    .sort()
    .map((n) => `${n}=${lgetxattrSync(path, n).toString('hex')}`)
    .join(',');
}

// glibc's gnu_dev_major / gnu_dev_minor.
const MAJOR = (dev: bigint): number => Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n));
const MINOR = (dev: bigint): number => Number((dev & 0xffn) | ((dev >> 12n) & 0xffffff00n));

/** Walks `root` (never following symlinks) and digests what a container would see of it. */
export async function treeDigest(root: string, opts: DigestOptions = {}): Promise<TreeDigest> {
  const exclude = new Set((opts.exclude ?? ['lost+found']).map((p) => `/${p.replace(/^\/+|\/+$/g, '')}`));
  const excludedXattrs = new Set([...ALWAYS_EXCLUDED_XATTRS, ...(opts.excludeXattrs ?? [])]);
  const raw: Array<{ path: string; st: BigIntStats; extra: string }> = [];

  const visit = async (rel: string): Promise<void> => {
    const full = rel === '/' ? root : root + rel;
    const st = await lstat(full, { bigint: true });
    let extra = '';
    if (st.isFile()) extra = opts.liveFiles?.has(full) === true ? `size=${st.size} live` : `size=${st.size} sha256=${await hashFile(full)}`;
    else if (st.isSymbolicLink()) extra = `target=${JSON.stringify(await readlink(full))}`;
    else if (st.isCharacterDevice() || st.isBlockDevice()) extra = `rdev=${MAJOR(st.rdev)}:${MINOR(st.rdev)}`;
    const x = xattrsOf(full, excludedXattrs);
    if (x !== '') extra += ` xattrs=${x}`;
    raw.push({ path: rel, st, extra });
    if (st.isDirectory()) {
      const names = (await readdir(full)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const name of names) {
        const child = rel === '/' ? `/${name}` : `${rel}/${name}`;
        if (exclude.has(child)) continue;
        await visit(child);
      }
    }
  };
  await visit('/');

  // The first path of each inode that has more than one link inside the tree.
  const firstOfInode = new Map<string, string>();
  const linksInTree = new Map<string, number>();
  for (const { path, st } of raw) {
    if (st.isDirectory()) continue;
    const key = `${st.dev}:${st.ino}`;
    linksInTree.set(key, (linksInTree.get(key) ?? 0) + 1);
    if (!firstOfInode.has(key)) firstOfInode.set(key, path);
  }

  const entries: DigestEntry[] = [];
  for (const { path, st, extra } of raw) {
    if (path === '/' && opts.root === false) continue;
    const mode = (Number(st.mode) & 0o7777).toString(8).padStart(4, '0');
    let line = `${JSON.stringify(path)} ${typeChar(st)} ${mode} ${st.uid}:${st.gid}`;
    if (extra !== '') line += ` ${extra}`;
    if (!st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if ((linksInTree.get(key) ?? 0) > 1) line += ` links=${JSON.stringify(firstOfInode.get(key))}`;
    }
    if (opts.mtime === true && path !== '/') line += ` mtime=${st.mtimeNs / 1_000_000_000n}`;
    entries.push({ path, line });
  }
  const h = createHash('sha256');
  for (const e of entries) h.update(`${e.line}\n`);
  return { digest: h.digest('hex'), entries };
}

/** The entries that differ between two digests, as `- line` (only in a) / `+ line` (only in b) pairs. */
export function diffDigests(a: TreeDigest, b: TreeDigest, limit = 20): string[] {
  const inA = new Map(a.entries.map((e) => [e.path, e.line]));
  const inB = new Map(b.entries.map((e) => [e.path, e.line]));
  const out: string[] = [];
  const paths = [...new Set([...inA.keys(), ...inB.keys()])].sort();
  for (const p of paths) {
    const la = inA.get(p);
    const lb = inB.get(p);
    if (la === lb) continue;
    if (la !== undefined) out.push(`- ${la}`);
    if (lb !== undefined) out.push(`+ ${lb}`);
    if (out.length >= limit) {
      out.push('...');
      break;
    }
  }
  return out;
}

/** Throws an AssertionError listing the differing entries unless both trees digest the same. */
export function assertSameTree(actual: TreeDigest, expected: TreeDigest, what: string): void {
  if (actual.digest === expected.digest) return;
  const lines = diffDigests(expected, actual);
  const err = new Error(`${what}: trees differ (- expected, + actual):\n${lines.join('\n')}`);
  err.name = 'AssertionError';
  throw err;
}
