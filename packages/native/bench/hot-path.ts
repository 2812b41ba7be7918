/**
 * The unpacker's hot path: per file an openat2 + write + close, fchownat, fchmodat, utimensat,
 * lsetxattr and llistxattr, for 10,000 files, against Node's own fs calls doing the same work
 * (fs has no openat2 or xattrs: it opens by full path and skips xattrs). Prints ns per call.
 * On tmpfs (/dev/shm; BENCH_DIR to change) so that the binding's cost is visible.
 * Run: node --import tsx bench/hot-path.ts
 */
import { chownSync, closeSync, lutimesSync, mkdtempSync, openSync, rmSync, chmodSync, writeSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import {
  AT, O, RESOLVE, fchmodatSync, fchownatSync, fstatatSync, llistxattrSync, lsetxattrSync, lgetxattrSync, openat2Sync, utimensatSync,
} from '../src/index.js';

const N = 10_000;
const payload = Buffer.from('x');
const xattr = Buffer.from([0x01, 0x00, 0x00, 0x02, 0x80, 0xff]);
const t = { sec: 1_700_000_000, nsec: 5 };

function time(label: string, calls: number, fn: () => void): number {
  const t0 = process.hrtime.bigint();
  fn();
  const ns = Number(process.hrtime.bigint() - t0);
  console.log(`${label.padEnd(44)} ${(ns / 1e6).toFixed(1).padStart(8)} ms  ${(ns / calls).toFixed(0).padStart(6)} ns/call`);
  return ns;
}

function native(dir: string): void {
  const dirfd = openSync(dir, O.RDONLY | O.DIRECTORY | O.CLOEXEC);
  try {
    time('native: openat2 IN_ROOT + write + close', N, () => {
      for (let i = 0; i < N; i++) {
        const fd = openat2Sync(dirfd, `f${i}`, { flags: O.WRONLY | O.CREAT | O.EXCL | O.CLOEXEC, mode: 0o644, resolve: RESOLVE.IN_ROOT });
        writeSync(fd, payload);
        closeSync(fd);
      }
    });
    time('native: fchownat', N, () => { for (let i = 0; i < N; i++) fchownatSync(dirfd, `f${i}`, 1000, 1000, AT.SYMLINK_NOFOLLOW); });
    time('native: fchmodat', N, () => { for (let i = 0; i < N; i++) fchmodatSync(dirfd, `f${i}`, 0o640); });
    time('native: utimensat', N, () => { for (let i = 0; i < N; i++) utimensatSync(dirfd, `f${i}`, t, t, AT.SYMLINK_NOFOLLOW); });
    time('native: lsetxattr (full path)', N, () => { for (let i = 0; i < N; i++) lsetxattrSync(join(dir, `f${i}`), 'trusted.bench', xattr); });
    time('native: lgetxattr (full path)', N, () => { for (let i = 0; i < N; i++) lgetxattrSync(join(dir, `f${i}`), 'trusted.bench'); });
    time('native: llistxattr (full path)', N, () => { for (let i = 0; i < N; i++) llistxattrSync(join(dir, `f${i}`)); });
    time('native: fstatat', N, () => { for (let i = 0; i < N; i++) fstatatSync(dirfd, `f${i}`, AT.SYMLINK_NOFOLLOW); });
  } finally {
    closeSync(dirfd);
  }
}

function nodeFs(dir: string): void {
  time('node fs: open + write + close', N, () => {
    for (let i = 0; i < N; i++) {
      const fd = openSync(join(dir, `f${i}`), 'wx', 0o644);
      writeSync(fd, payload);
      closeSync(fd);
    }
  });
  time('node fs: chown', N, () => { for (let i = 0; i < N; i++) chownSync(join(dir, `f${i}`), 1000, 1000); });
  time('node fs: chmod', N, () => { for (let i = 0; i < N; i++) chmodSync(join(dir, `f${i}`), 0o640); });
  time('node fs: lutimes', N, () => { for (let i = 0; i < N; i++) lutimesSync(join(dir, `f${i}`), t.sec, t.sec); });
  time('node fs: lstat', N, () => { for (let i = 0; i < N; i++) lstatSync(join(dir, `f${i}`)); });
}

const order = process.argv[2] === 'native-first' ? ([['native', native], ['node', nodeFs]] as const) : ([['node', nodeFs], ['native', native]] as const);
for (const [label, fn] of order) {
  // tmpfs by default, so that the numbers show the call overhead rather than the disk
  const dir = mkdtempSync(`${process.env.BENCH_DIR ?? '/dev/shm'}/native-bench-${label}-`);
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
