/**
 * The byte side of LayerTarWriter: a pull-driven Readable fed from large batch buffers that
 * entries are written into in place (no buffer per header or per small file, no concat), the
 * serial order of the writer's steps, and backpressure.
 *
 * Steps run one after another in call order. While nothing asynchronous is in flight and the
 * consumer keeps up, a step runs at once, synchronously (one resolved Promise per add instead of a
 * chain of them): that is what makes a walk over many small files cheap. A step that must wait
 * (a large file's data, a consumer that is behind) makes later steps queue behind it.
 *
 * Written bytes are pushed when about BATCH of them are pending, before any large write, at the
 * end, and otherwise on the next turn of the event loop, so a caller that adds one entry and then
 * waits still sees it go out.
 */
import { Readable } from 'node:stream';

/** Pending bytes are pushed as one chunk once there are this many. */
const BATCH = 64 * 1024;
/** Size of a fresh batch buffer (several batches share one; a bigger entry gets its own). */
const BUFFER_SIZE = 512 * 1024;
/** The first buffer is smaller: many tars (a diff of a few files) never need more. */
const FIRST_BUFFER_SIZE = 16 * 1024;

export class TarOutput {
  readonly stream: Readable;
  /** Set once the output failed or was destroyed: every later step rejects with it. */
  failure: Error | undefined;
  ended = false;
  /** The batch buffer: write at reserve()'s offset, then commit(). */
  buf: Buffer = Buffer.allocUnsafe(FIRST_BUFFER_SIZE);
  /** buf[start, used) is written and not yet pushed. */
  private start = 0;
  private used = 0;
  private busy: Promise<unknown> | undefined;
  private blocked = false;
  private drained: (() => void) | undefined;
  private flushScheduled = false;

  constructor(onDestroy: (err: Error | null) => void) {
    this.stream = new Readable({
      highWaterMark: 1024 * 1024,
      read: () => {
        this.blocked = false;
        this.wake();
      },
      destroy: (err, cb) => {
        // After end() the stream ends and auto-destroys: that is not a failure.
        if (err !== null || !this.ended) this.failure ??= err ?? new Error('the tar stream was destroyed');
        this.start = this.used;
        this.wake();
        onDestroy(err);
        cb(err);
      },
    });
  }

  /** Settles when no step is in flight (at once when none is). */
  idle(): Promise<void> {
    return this.busy === undefined ? Promise.resolve() : this.busy.then(() => undefined);
  }

  /** Run `step` after every earlier one; synchronously when nothing is in flight. */
  run<T>(step: () => T | Promise<T>): Promise<T> {
    try {
      const result = this.runNow(step);
      return result instanceof Promise ? result : Promise.resolve(result);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * run() without a Promise when the step could run at once: its value (or its synchronous
   * throw), else a Promise as run() gives. For a caller that adds many entries in a loop.
   */
  runNow<T>(step: () => T | Promise<T>): T | Promise<T> {
    if (this.busy === undefined && !this.blocked) {
      this.check();
      const result = step();
      if (!(result instanceof Promise)) {
        this.afterStep();
        return result;
      }
      return this.track(result);
    }
    const previous = this.busy ?? Promise.resolve();
    return this.track(
      previous.then(async () => {
        await this.whenDrained();
        this.check();
        const result = await step();
        if (this.used - this.start >= BATCH) this.flush();
        return result;
      }),
    );
  }

  private track<T>(p: Promise<T>): Promise<T> {
    // A failed step must not keep later ones from running (they see a failure of the output itself).
    const settled: Promise<void> = p.then(
      () => this.settle(settled),
      () => this.settle(settled),
    );
    this.busy = settled;
    return p;
  }

  private settle(which: Promise<void>): void {
    if (this.busy === which) {
      this.busy = undefined;
      this.afterStep();
    }
  }

  private afterStep(): void {
    if (this.used - this.start >= BATCH) this.flush();
    else if (this.used > this.start && !this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        // Only between steps: a step in flight flushes (or schedules) itself when it ends.
        if (this.busy === undefined) this.flush();
      });
    }
  }

  check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /** Make room for `n` bytes; returns the offset in `buf` to write them at. */
  reserve(n: number): number {
    if (this.used + n > this.buf.length) {
      this.flush();
      // Grow by steps up to BUFFER_SIZE: a diff of a few files that just overflows the first
      // buffer must not cost a fresh 512 KiB per tar (garbage-collector work on every small diff).
      this.buf = Buffer.allocUnsafe(Math.max(Math.min(BUFFER_SIZE, this.buf.length * 4), n));
      this.start = 0;
      this.used = 0;
    }
    return this.used;
  }

  /** Where the space reserve() made begins (until commit). */
  get reservedAt(): number {
    return this.used;
  }

  /** The `n` bytes at the reserved offset are written. */
  commit(n: number): void {
    this.used += n;
  }

  /** Copy `bytes` in (small things: end markers, PAX headers). */
  append(bytes: Buffer): void {
    const off = this.reserve(bytes.length);
    bytes.copy(this.buf, off);
    this.commit(bytes.length);
  }

  /** Push what is written and not yet pushed, as one chunk. */
  flush(): void {
    if (this.used === this.start || this.failure !== undefined) return;
    const chunk = this.buf.subarray(this.start, this.used);
    this.start = this.used;
    if (!this.stream.push(chunk)) this.blocked = true;
  }

  /** Push `chunk` after what is pending (a large file's data), then wait while the consumer is behind. */
  async pushNow(chunk: Buffer): Promise<void> {
    this.check();
    this.flush();
    if (!this.stream.push(chunk)) this.blocked = true;
    await this.whenDrained();
    this.check();
  }

  /** Resolves when the consumer has asked for more (or the output failed). */
  whenDrained(): Promise<void> {
    if (!this.blocked || this.failure !== undefined) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.drained = resolve;
    });
  }

  private wake(): void {
    const fn = this.drained;
    this.drained = undefined;
    fn?.();
  }

  /** Push what is pending and end the stream. */
  end(): void {
    this.flush();
    this.ended = true;
    this.stream.push(null);
  }

  destroy(err: Error): void {
    this.failure ??= err;
    this.start = this.used;
    this.stream.destroy(err);
  }
}
