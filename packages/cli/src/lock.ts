/**
 * One command at a time changes a store: a lock file made with O_EXCL that holds the owner's pid.
 * A lock whose owner is gone (killed, machine restarted) is stale and taken over; a live owner is
 * waited for. Node has no flock(2), and a pid file is what a person can read to see who holds it.
 */
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { debuglog } from 'node:util';
import { errorCode } from '@graphdriver/core';

const debug = debuglog('graphdriver:cli');

export interface LockOptions {
  signal?: AbortSignal;
  /** Called once when another live process holds the lock and we start waiting. */
  onWait?: (ownerPid: number) => void;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}

/** Takes the lock at `path`; resolves to the function that releases it. */
export async function acquireLock(path: string, opts: LockOptions = {}): Promise<() => Promise<void>> {
  const token = `${process.pid}\n`;
  let warned = false;
  for (;;) {
    opts.signal?.throwIfAborted();
    try {
      const fh = await open(path, 'wx', 0o600);
      try {
        await fh.writeFile(token);
      } finally {
        await fh.close();
      }
      return async () => {
        // only our own lock: a stale-lock takeover by another process must not be undone by us
        const now = await readFile(path, 'utf8').catch(() => undefined);
        if (now === token) await rm(path, { force: true });
      };
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
    }
    const content = await readFile(path, 'utf8').catch(() => undefined);
    if (content === undefined) continue; // released meanwhile
    const owner = Number.parseInt(content, 10);
    let stale = Number.isInteger(owner) && owner > 0 ? !isAlive(owner) : false;
    if (!Number.isInteger(owner) || owner <= 0) {
      // written but not yet filled by its owner, or garbage: stale once it is old
      const st = await stat(path).catch(() => undefined);
      stale = st !== undefined && Date.now() - st.mtimeMs > 10_000;
    }
    if (stale) {
      debug('taking over stale lock %s of pid %s', path, content.trim());
      // rename first: of two processes that both saw it stale, only one moves this file away
      const aside = `${path}.stale-${process.pid}`;
      try {
        await rename(path, aside);
        await rm(aside, { force: true });
      } catch (err) {
        if (errorCode(err) !== 'ENOENT') throw err;
      }
      continue;
    }
    if (!warned) {
      warned = true;
      opts.onWait?.(owner);
    }
    await sleep(100, undefined, opts.signal === undefined ? {} : { signal: opts.signal });
  }
}
