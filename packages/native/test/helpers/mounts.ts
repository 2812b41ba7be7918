/**
 * Mount helpers for tests: what /proc/self/mountinfo says about a mount point, a cleanup that
 * unmounts whatever a test left mounted under a directory, and a user namespace (for idmapped
 * mounts) made with util-linux's unshare and mapped by writing its uid_map/gid_map as root.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { MNT, O, umount2 } from '../../src/index.js';

export interface MountEntry {
  mountPoint: string;
  options: string;
  fstype: string;
  source: string;
  superOptions: string;
}

// mountinfo escapes space, tab, newline and backslash as octal.
const unescape = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function mountsAt(path: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    if (!line) continue;
    const [left, right] = line.split(' - ') as [string, string];
    const f = left.split(' ');
    const r = right.split(' ');
    const entry = { mountPoint: unescape(f[4]!), options: f[5]!, fstype: r[0]!, source: unescape(r[1]!), superOptions: r[2]! };
    if (entry.mountPoint === path) out.push(entry);
  }
  return out;
}

/** Lazily unmounts every mount at or below `dir` (deepest first), for finally blocks. */
export async function unmountAllUnder(dir: string): Promise<void> {
  for (;;) {
    const points = readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .map((line) => unescape(line.split(' ')[4] ?? ''))
      .filter((p) => p === dir || p.startsWith(dir + '/'))
      .sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    await umount2(points[0]!, MNT.DETACH);
  }
}

/**
 * Runs `fn` with an fd of a new user namespace whose ids 0..count-1 map to host ids
 * hostBase..hostBase+count-1. The namespace is held by a `sleep` that is killed afterwards.
 */
export async function withUserNamespace<T>(hostBase: number, count: number, fn: (usernsFd: number) => Promise<T>): Promise<T> {
  const child = spawn('unshare', ['--user', 'sleep', '60'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    const pid = child.pid;
    if (pid === undefined) throw new Error('could not spawn unshare');
    const ours = readlinkSync('/proc/self/ns/user');
    for (let i = 0; ; i++) {
      let theirs = ours;
      try {
        theirs = readlinkSync(`/proc/${pid}/ns/user`);
      } catch {
        // not started yet
      }
      if (theirs !== ours) break;
      if (i > 200) throw new Error('unshare did not enter a new user namespace');
      await sleep(5);
    }
    writeFileSync(`/proc/${pid}/uid_map`, `0 ${hostBase} ${count}\n`);
    writeFileSync(`/proc/${pid}/gid_map`, `0 ${hostBase} ${count}\n`);
    const fd = openSync(`/proc/${pid}/ns/user`, O.RDONLY | O.CLOEXEC);
    try {
      return await fn(fd);
    } finally {
      closeSync(fd);
    }
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}
