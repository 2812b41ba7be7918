/**
 * Go's testing.B, for promises: an operation is run b.N times with a timer that the operation may
 * stop and start around its untimed parts, N grows as Go grows it (predict from the last run, +20%,
 * at most 100x, at least +1) until the timed total reaches the bench time, and the result is
 * nanoseconds per operation of that last run. One measurement is one sample; the caller repeats it
 * (Go's -count) for min and median.
 */
import type { Timer } from './cases.js';

export interface Measurement {
  iterations: number;
  nsPerOp: number;
}

class HrTimer implements Timer {
  #running = false;
  #since = 0n;
  elapsed = 0n;
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#since = process.hrtime.bigint();
  }
  stop(): void {
    if (!this.#running) return;
    this.elapsed += process.hrtime.bigint() - this.#since;
    this.#running = false;
  }
}

/** Go's predictN: aim at `goal` from the last run, grow by a fifth, clamp. */
function predictN(goalNs: number, prevIters: number, prevNs: number, last: number): number {
  let n = prevNs <= 0 ? last * 100 : Math.floor((goalNs * prevIters) / prevNs);
  n += Math.floor(n / 5);
  n = Math.min(n, 100 * last);
  n = Math.max(n, last + 1);
  return Math.min(n, 1e9);
}

export async function measure(op: (timer: Timer) => Promise<void>, benchtimeMs: number, signal?: AbortSignal): Promise<Measurement> {
  const goal = benchtimeMs * 1e6;
  let n = 1;
  for (;;) {
    signal?.throwIfAborted();
    const timer = new HrTimer();
    timer.start();
    for (let i = 0; i < n; i++) await op(timer);
    timer.stop();
    const ns = Number(timer.elapsed);
    if (ns >= goal || n >= 1e9) return { iterations: n, nsPerOp: ns / n };
    n = predictN(goal, n, ns, n);
  }
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
