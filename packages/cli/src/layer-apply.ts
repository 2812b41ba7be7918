/**
 * Putting one layer tar into a layer: the bytes as they come (a blob of an image, a file) are
 * hashed, decompressed (gzip, zstd, by their first bytes), hashed again, counted for progress and
 * handed to the driver, in one streaming pass. Nothing is kept unless both digests are the ones
 * expected: where the driver has staged apply (core's hasStagedApply) the tar is extracted aside
 * and committed only after the check, so the layer never holds half a tar; elsewhere the caller
 * removes the layer it created when this throws.
 *
 * An interrupt (the signal) stops the read; the driver sees its input fail, and what it extracted
 * aside is discarded here.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { debuglog } from 'node:util';
import { AbortError, errorCode, hasStagedApply, type Driver, type StagedDiff } from '@graphdriver/core';
import { SNIFF_BYTES, decompressorFor, detectCompression, sniff, zlibErrorAsArchiveError, type Compression } from './decompress.js';
import { DigestStream, parseDigest } from './digest.js';
import { DigestMismatchError } from './errors.js';
import type { ProgressTask } from './progress.js';
import { TarEntryCounter } from './tar-counter.js';

const debug = debuglog('graphdriver:cli');

export interface LayerInput {
  /** Opens the bytes (compressed or not). Called once, and again to re-hash a blob whose tar is corrupt. */
  open(): Readable;
  /** Whether open() may be called a second time (false for stdin). */
  reopenable: boolean;
  /** What this is, for messages: `layer 2/3 (blob sha256:...)`, a file name. */
  what: string;
  /** The blob's digest and size as a manifest promises them. */
  blobDigest?: string;
  blobSize?: number;
  /** The digest of the uncompressed tar as the image config promises it. */
  diffId?: string;
}

export interface AppliedLayer {
  /** What applyDiff reported: the sum of the entries' sizes. */
  size: number;
  /** sha256 of the uncompressed tar. */
  diffId: string;
  /** Digest of the bytes as read (the blob). */
  blobDigest: string;
  blobBytes: number;
  tarBytes: number;
  entries: number;
  compression: Compression;
  /** Whether it went through the driver's staged apply. */
  staged: boolean;
}

export interface ApplyOptions {
  signal?: AbortSignal | undefined;
  progress?: ProgressTask;
  /**
   * Use the driver's staged apply when it has one (default). Only for a layer that is still
   * empty: a committed staged diff replaces the layer's content rather than adding to it.
   */
  staged?: boolean;
}

function isAbort(err: unknown): boolean {
  return err instanceof AbortError || (err instanceof Error && err.name === 'AbortError') || errorCode(err) === 'ABORT_ERR';
}

/** Reads all of `input` again to tell a corrupt blob (digest mismatch) from a corrupt image. */
async function blobDigestMismatch(input: LayerInput, signal?: AbortSignal): Promise<DigestMismatchError | undefined> {
  const expected = parseDigest(input.blobDigest);
  if (expected === undefined || !input.reopenable) return undefined;
  const hash = new DigestStream(expected.algorithm);
  try {
    await new Promise<void>((resolve, reject) => {
      const src = input.open();
      pipeline(src, hash, (err) => (err ? reject(err) : resolve()));
      hash.resume();
      signal?.addEventListener('abort', () => src.destroy(new AbortError()), { once: true });
    });
  } catch {
    return undefined;
  }
  const got = hash.digest;
  if (got !== undefined && got !== input.blobDigest) return new DigestMismatchError(`${input.what}: blob digest`, input.blobDigest!, got);
  if (input.blobSize !== undefined && hash.bytes !== input.blobSize) {
    return new DigestMismatchError(`${input.what}: blob size`, `${input.blobSize} bytes`, `${hash.bytes} bytes`);
  }
  return undefined;
}

function check(input: LayerInput, blob: DigestStream, tar: DigestStream): void {
  if (input.blobSize !== undefined && blob.bytes !== input.blobSize) {
    throw new DigestMismatchError(`${input.what}: blob size`, `${input.blobSize} bytes`, `${blob.bytes} bytes`);
  }
  if (input.blobDigest !== undefined && blob.digest !== input.blobDigest) {
    throw new DigestMismatchError(`${input.what}: blob digest`, input.blobDigest, blob.digest ?? '(nothing read)');
  }
  if (input.diffId !== undefined && tar.digest !== input.diffId) {
    throw new DigestMismatchError(`${input.what}: diff id (digest of the uncompressed layer)`, input.diffId, tar.digest ?? '(nothing read)');
  }
}

/**
 * Applies `input` to the existing layer `id` (on `parent`), verified. Throws a DigestMismatchError
 * (nothing kept where staged), an AbortError when interrupted, or what the driver threw.
 */
export async function applyLayer(driver: Driver, id: string, parent: string | undefined, input: LayerInput, opts: ApplyOptions = {}): Promise<AppliedLayer> {
  const { signal } = opts;
  signal?.throwIfAborted();
  debug('applying %s to layer %s (parent %s)', input.what, id, parent ?? 'none');
  const { head, stream: raw } = await sniff(input.open(), SNIFF_BYTES, signal);
  const compression = detectCompression(head);
  let decompressor;
  try {
    decompressor = decompressorFor(compression, input.what);
  } catch (err) {
    raw.destroy();
    throw err;
  }
  const blob = new DigestStream(parseDigest(input.blobDigest)?.algorithm ?? 'sha256');
  const tar = new DigestStream('sha256');
  const counter = new TarEntryCounter();
  const stages = decompressor === undefined ? [raw, blob, tar, counter] : [raw, blob, decompressor, tar, counter];

  let pipeError: unknown;
  const piped = new Promise<void>((resolve) => {
    (pipeline as (...args: unknown[]) => void)(...stages, (err: unknown) => {
      pipeError = err ?? undefined;
      resolve();
    });
  });
  const onAbort = (): void => {
    raw.destroy(new AbortError('The operation was aborted', { cause: signal?.reason }));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const report = (): void => opts.progress?.update(blob.bytes, counter.entries, decompressor === undefined ? undefined : tar.bytes);
  const ticker = opts.progress === undefined ? undefined : setInterval(report, 100);
  ticker?.unref();

  const stager = opts.staged !== false && hasStagedApply(driver) ? driver : undefined;
  const staging = stager !== undefined;
  let staged: StagedDiff | undefined;
  let size = 0;
  try {
    try {
      if (stager !== undefined) {
        staged = await stager.applyDiffToStaging(id, parent, counter, { signal });
        size = staged.size;
      } else {
        size = await driver.applyDiff(id, parent, counter, { signal });
      }
      // the driver stops at the tar's end blocks; whatever follows must still be hashed
      counter.resume();
      await piped;
      if (pipeError !== undefined) throw pipeError;
    } catch (err) {
      counter.resume();
      if (!counter.destroyed) counter.destroy();
      await piped;
      // the first failure is the one to report: a corrupt blob, not the driver's "input failed"
      const primary = pipeError !== undefined && errorCode(pipeError) !== 'ERR_STREAM_PREMATURE_CLOSE' ? pipeError : err;
      if (signal?.aborted === true || isAbort(primary)) throw new AbortError('The operation was aborted', { cause: primary });
      if (!(primary instanceof DigestMismatchError)) {
        const mismatch = await blobDigestMismatch(input, signal);
        if (mismatch !== undefined) throw mismatch;
      }
      throw zlibErrorAsArchiveError(primary, input.what);
    }
    check(input, blob, tar);
    if (staged !== undefined && stager !== undefined) {
      signal?.throwIfAborted();
      await stager.commitStaged(id, staged);
      staged = undefined;
    }
  } catch (err) {
    if (staged !== undefined && stager !== undefined) {
      await stager.cleanupStaging(staged).catch((e: unknown) => debug('cleanupStaging of %s: %o', id, e));
    }
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (ticker !== undefined) clearInterval(ticker);
  }
  report();
  debug('applied %s to %s: %d tar bytes, %d entries, %s', input.what, id, tar.bytes, counter.entries, compression);
  return {
    size,
    diffId: tar.digest!,
    blobDigest: blob.digest!,
    blobBytes: blob.bytes,
    tarBytes: tar.bytes,
    entries: counter.entries,
    compression,
    staged: staging,
  };
}

/** True for the errors an interrupt produces. */
export function isInterrupt(err: unknown): boolean {
  return isAbort(err);
}
