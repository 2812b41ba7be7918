/**
 * Layer blobs and archives come uncompressed, gzip- or zstd-compressed; which one is read from
 * their first bytes, as moby's DetectCompression and containers/image do, not trusted from a media
 * type. gzip is Node's zlib; zstd is fzstd, a pure-JS decoder (Node 20's zlib has no zstd, and a
 * package with a prebuilt binary cannot be installed everywhere this runs). bzip2 and xz are
 * recognised so that the error can name them.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Decompress } from 'fzstd';
import { AbortError, InvalidArchiveError } from '@graphdriver/core';

export type Compression = 'none' | 'gzip' | 'zstd' | 'bzip2' | 'xz';

/** How many leading bytes detectCompression looks at. */
export const SNIFF_BYTES = 6;

export function detectCompression(head: Uint8Array): Compression {
  const at = (i: number): number => head[i] ?? -1;
  if (at(0) === 0x1f && at(1) === 0x8b) return 'gzip';
  if (at(0) === 0x28 && at(1) === 0xb5 && at(2) === 0x2f && at(3) === 0xfd) return 'zstd';
  if (at(0) === 0x42 && at(1) === 0x5a && at(2) === 0x68) return 'bzip2';
  if (at(0) === 0xfd && at(1) === 0x37 && at(2) === 0x7a && at(3) === 0x58 && at(4) === 0x5a && at(5) === 0) return 'xz';
  return 'none';
}

/** zstd frames in, bytes out; truncated or corrupt input is an InvalidArchiveError. */
export class ZstdDecompressStream extends Transform {
  #decoder: Decompress;
  #failed = false;

  constructor() {
    super({ highWaterMark: 1 << 20 });
    this.#decoder = new Decompress((data) => {
      // fzstd reuses no buffer it hands out, so the chunk can be pushed as it is
      this.push(data);
    });
  }

  #feed(chunk: Uint8Array, final: boolean, cb: TransformCallback): void {
    if (this.#failed) return cb();
    try {
      this.#decoder.push(chunk, final);
    } catch (err) {
      this.#failed = true;
      const why = err instanceof Error ? err.message : String(err);
      return cb(new InvalidArchiveError(`zstd data is ${final ? 'truncated or ' : ''}corrupt: ${why}`, undefined, { cause: err }));
    }
    cb();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#feed(chunk, false, cb);
  }

  override _flush(cb: TransformCallback): void {
    this.#feed(new Uint8Array(0), true, cb);
  }
}

/** zlib's errors (`Z_DATA_ERROR` "incorrect header check", `Z_BUF_ERROR` "unexpected end of file") as what they mean here. */
export function zlibErrorAsArchiveError(err: unknown, what: string): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('Z_')) {
    return new InvalidArchiveError(`${what}: gzip data is truncated or corrupt (${(err as Error).message})`, undefined, { cause: err });
  }
  return err;
}

/**
 * A stream that turns data compressed with `compression` into the plain bytes, or undefined when
 * it is already plain. bzip2 and xz are refused with an error that names them.
 */
export function decompressorFor(compression: Compression, what: string): Transform | undefined {
  switch (compression) {
    case 'none':
      return undefined;
    case 'gzip':
      return createGunzip({ chunkSize: 1 << 20 });
    case 'zstd':
      return new ZstdDecompressStream();
    default:
      throw new InvalidArchiveError(`${what} is ${compression}-compressed; graphdriver reads uncompressed, gzip and zstd data`);
  }
}

/**
 * The first `n` bytes of `src` (fewer when it is shorter) and a stream of all of it, for inputs
 * that cannot be read twice (stdin). Destroying the returned stream destroys `src`.
 */
export async function sniff(src: Readable, n: number, signal?: AbortSignal): Promise<{ head: Buffer; stream: Readable }> {
  const it = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first: Buffer[] = [];
  let have = 0;
  let done = false;
  // an input that sends nothing (a stalled pipe) must not outlast an interrupt
  const onAbort = (): void => {
    src.destroy(new AbortError('The operation was aborted', { cause: signal?.reason }));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    signal?.throwIfAborted();
    while (have < n) {
      const r = await it.next();
      if (r.done === true) {
        done = true;
        break;
      }
      first.push(r.value);
      have += r.value.length;
    }
  } catch (err) {
    src.destroy();
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  async function* all(): AsyncGenerator<Buffer> {
    try {
      yield* first;
      if (done) return;
      for (;;) {
        const r = await it.next();
        if (r.done === true) return;
        yield r.value;
      }
    } finally {
      if (!src.destroyed) src.destroy();
    }
  }
  return { head: Buffer.concat(first).subarray(0, n), stream: Readable.from(all(), { objectMode: false, highWaterMark: 1 << 20 }) };
}
