/**
 * Per-key async mutual exclusion (moby's locker.Locker, made for promises): operations on one layer
 * id (or one mount point) run one at a time in the order they asked, operations on different keys
 * run in parallel. A key's entry lives only while someone holds or waits for it, so a store with
 * millions of layers does not grow a map of millions of idle locks.
 */

interface KeyState {
  /** Wake-ups of the waiters, first come first served. */
  waiters: Array<() => void>;
}

export interface WithLockOptions {
  /** Give up waiting (not running): rejects with the signal's reason and leaves the queue as it was. */
  signal?: AbortSignal;
}

export class KeyedMutex<K = string> {
  readonly #keys = new Map<K, KeyState>();

  /**
   * Runs `fn` once every earlier caller of `withLock(key)` has finished, and returns its result.
   * The lock is released however `fn` ends.
   */
  async withLock<T>(key: K, fn: () => T | Promise<T>, opts: WithLockOptions = {}): Promise<T> {
    await this.#acquire(key, opts.signal);
    try {
      return await fn();
    } finally {
      this.#release(key);
    }
  }

  /** True while someone holds `key`. */
  isLocked(key: K): boolean {
    return this.#keys.has(key);
  }

  /** How many callers wait for `key` (not counting the holder). */
  waiting(key: K): number {
    return this.#keys.get(key)?.waiters.length ?? 0;
  }

  /** How many keys are held right now; 0 when idle (nothing leaks). */
  get size(): number {
    return this.#keys.size;
  }

  #acquire(key: K, signal: AbortSignal | undefined): Promise<void> {
    signal?.throwIfAborted();
    const state = this.#keys.get(key);
    if (state === undefined) {
      this.#keys.set(key, { waiters: [] });
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = state.waiters.indexOf(wake);
        if (i >= 0) state.waiters.splice(i, 1);
        reject(signal?.reason);
      };
      state.waiters.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  #release(key: K): void {
    const state = this.#keys.get(key);
    if (state === undefined) return;
    const next = state.waiters.shift();
    // Hand the lock straight to the next waiter (the entry stays), so no newcomer can jump the queue.
    if (next === undefined) this.#keys.delete(key);
    else next();
  }
}
