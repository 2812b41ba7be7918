/**
 * Reading a layer tar: tar-stream's Extract does the block framing (headers, GNU long names, data
 * with backpressure), and this file turns each header into a complete, validated TarEntry.
 *
 * tar-stream 3.2.2 decodes PAX values as UTF-8 text (corrupting binary xattrs), ignores PAX `uid`,
 * `gid`, `mtime` and `atime`, and merges global (`g`) headers into every later entry (Go and moby
 * ignore them). So the Extract's long-header decoder is replaced on the instance: the raw PAX
 * bytes are decoded here (binary-safe, strict), tar-stream only gets back what it needs for
 * framing (`path`, `linkpath`, `size`), and the full records are attached to the entry they
 * precede. The hook is checked when an Extract is made, so a tar-stream whose internals changed
 * fails loudly instead of silently losing xattrs.
 *
 * Entry handlers are synchronous on purpose: the unpacker does its syscalls with the Sync native
 * calls, and a handler returns a DataSink that receives the entry's data chunk by chunk.
 */
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import tarStream from 'tar-stream';
import { GraphDriverError, InvalidArchiveError } from '../errors.js';
import { AbortError, abortErrorFrom } from './abort.js';
import type { EntryKind } from './header.js';
import { decodePaxRecords, paxInteger, paxIsSparse, paxString, paxTime, paxXattrs, type PaxTime } from './pax.js';

const debug = debuglog('graphdriver:core');

/** One entry of a layer tar, with PAX records applied. */
export interface TarEntry {
  /** The name as the tar holds it (GNU long name or PAX path applied), not yet normalised. */
  name: string;
  kind: EntryKind;
  /** Permission, set-id and sticky bits (07777). */
  mode: number;
  /** Container ids, as in the tar. */
  uid: number;
  gid: number;
  size: number;
  mtime: PaxTime;
  /** Only when a PAX `atime` record is present. */
  atime: PaxTime | undefined;
  /** Symlink target or hard-link target; '' for other kinds. */
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Array<[name: string, value: Buffer]>;
}

/** Receives an entry's data; both calls are synchronous and may throw to stop the unpack. */
export interface DataSink {
  write(chunk: Buffer): void;
  end(): void;
  /** Release what the sink holds (an fd) when the unpack stops before end(). Must not throw. */
  abort(): void;
}

/** Handles one entry; returns a sink for its data, or null to skip the data. May throw. */
export type EntryHandler = (entry: TarEntry) => DataSink | null;

// The parts of tar-stream's Extract (3.2.x) the PAX hook relies on.
interface ExtractInternals {
  _header: { type: string | null } | null;
  _pax: Record<string, string> | null;
  _decodeLongHeader: (this: ExtractInternals, buf: Uint8Array) => void;
}

/** A header as tar-stream really hands it over: `type` is null for types it does not know. */
type RawHeader = Omit<tarStream.Header, 'type'> & { type: string | null };

interface EntryStream {
  on(event: 'data', fn: (chunk: Buffer) => void): unknown;
  on(event: 'end', fn: () => void): unknown;
  on(event: 'error', fn: (err: Error) => void): unknown;
  resume(): unknown;
}

type ExtractOptions = NonNullable<Parameters<typeof tarStream.extract>[0]> & { allowUnknownFormat?: boolean };

const KINDS: Record<string, EntryKind> = {
  file: 'file',
  'contiguous-file': 'file',
  link: 'link',
  symlink: 'symlink',
  'character-device': 'char',
  'block-device': 'block',
  directory: 'dir',
  fifo: 'fifo',
};

function makeExtract(onPax: (records: Map<string, Buffer>) => void): tarStream.Extract {
  // v7 headers (no "ustar" magic) are still tars; Go reads them too. The checksum still guards.
  const options: ExtractOptions = { allowUnknownFormat: true };
  const ex = tarStream.extract(options);
  const internals = ex as unknown as ExtractInternals;
  const original = internals._decodeLongHeader;
  if (typeof original !== 'function' || !('_pax' in internals) || !('_header' in internals)) {
    throw new Error('tar-stream internals changed: archive/tar-reader.ts needs updating (expected tar-stream 3.2.x)');
  }
  internals._decodeLongHeader = function decodeLongHeader(this: ExtractInternals, buf: Uint8Array): void {
    const type = this._header?.type;
    if (type === 'pax-global-header') return; // ignored, as Go's reader and moby do
    if (type !== 'pax-header') {
      original.call(this, buf);
      return;
    }
    const records = decodePaxRecords(buf);
    const framing: Record<string, string> = {};
    const path = paxString(records, 'path');
    const linkpath = paxString(records, 'linkpath');
    const size = paxInteger(records, 'size');
    if (path !== undefined) framing.path = path;
    if (linkpath !== undefined) framing.linkpath = linkpath;
    if (size !== undefined) framing.size = String(size);
    this._pax = framing;
    onPax(records);
  };
  return ex;
}

function toEntry(hdr: RawHeader, pax: Map<string, Buffer> | null): TarEntry {
  const name = hdr.name;
  const kind = hdr.type == null ? undefined : KINDS[hdr.type];
  if (pax !== null && paxIsSparse(pax)) {
    throw new InvalidArchiveError('sparse files are not supported in layer tars', name);
  }
  if (kind === undefined) {
    throw new InvalidArchiveError('unsupported tar entry type (GNU sparse, volume label, multi-volume or unknown)', name);
  }
  const size = hdr.size ?? 0;
  const mtimeMs = hdr.mtime?.getTime() ?? 0;
  let uid = hdr.uid ?? 0;
  let gid = hdr.gid ?? 0;
  let mtime: PaxTime = { sec: Math.floor(mtimeMs / 1000), nsec: 0 };
  let atime: PaxTime | undefined;
  let xattrs: Array<[string, Buffer]> = [];
  if (pax !== null) {
    uid = paxInteger(pax, 'uid', name) ?? uid;
    gid = paxInteger(pax, 'gid', name) ?? gid;
    mtime = paxTime(pax, 'mtime', name) ?? mtime;
    atime = paxTime(pax, 'atime', name);
    xattrs = paxXattrs(pax);
  }
  if (!Number.isSafeInteger(uid) || uid < 0 || !Number.isSafeInteger(gid) || gid < 0) {
    throw new InvalidArchiveError(`invalid owner ${uid}:${gid}`, name);
  }
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidArchiveError(`invalid size ${size}`, name);
  return {
    name,
    kind,
    mode: (hdr.mode ?? 0) & 0o7777,
    uid,
    gid,
    size,
    mtime,
    atime,
    linkname: hdr.linkname ?? '',
    devmajor: hdr.devmajor ?? 0,
    devminor: hdr.devminor ?? 0,
    xattrs,
  };
}

/** tar-stream's own errors (bad checksum, unknown format, truncated data) mean a bad archive. */
function toArchiveError(err: unknown): unknown {
  if (err instanceof GraphDriverError || err instanceof AbortError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InvalidArchiveError(`not a valid tar: ${message}`, undefined, { cause: err });
}

function compressionOf(chunk: Buffer): string | undefined {
  if (chunk.length >= 2 && chunk[0] === 0x1f && chunk[1] === 0x8b) return 'gzip';
  if (chunk.length >= 4 && chunk.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (chunk.length >= 3 && chunk.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (chunk.length >= 6 && chunk.toString('latin1', 1, 6) === '7zXZ\0') return 'xz';
  return undefined;
}

export interface ReadOptions {
  signal?: AbortSignal;
  /** Called once when reading stops for any reason (success, error, abort), before settling. */
  onSettle?: () => void;
}

/**
 * Feeds `input` through tar-stream and calls `handler` for each entry, in order. Resolves when the
 * archive ended and every entry was handled; rejects with the first error (InvalidArchiveError for
 * a corrupt, truncated or non-tar input, AbortError on abort, or what a handler threw). On failure
 * the input is destroyed and the current sink aborted.
 */
export function readLayerTar(input: Readable, handler: EntryHandler, opts: ReadOptions = {}): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let pendingPax: Map<string, Buffer> | null = null;
    let current: DataSink | null = null;
    let settled = false;
    let firstChunk = true;
    const signal = opts.signal;

    const settle = (err: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', fail);
      input.off('close', onClose);
      if (current !== null) {
        current.abort();
        current = null;
      }
      if (err !== undefined) {
        ex.destroy();
        if (!input.destroyed) input.destroy();
      }
      try {
        opts.onSettle?.();
      } catch (cleanupErr) {
        if (err === undefined) err = cleanupErr;
        else debug('archive: cleanup after a failed unpack failed too: %s', cleanupErr);
      }
      if (err === undefined) resolve();
      else reject(err);
    };
    const fail = (err: unknown): void => settle(err ?? new Error('unknown failure'));
    const failArchive = (err: unknown): void => fail(toArchiveError(err));
    const onAbort = (): void => fail(abortErrorFrom(signal as AbortSignal));

    const ex = makeExtract((records) => {
      pendingPax = records;
    });

    let currentNext: ((err?: Error | null) => void) | null = null;
    const onEntryData = (chunk: Buffer): void => {
      if (settled || current === null) return;
      try {
        current.write(chunk);
      } catch (err) {
        fail(err);
      }
    };
    const onEntryEnd = (): void => {
      if (settled) return;
      const sink = current;
      const next = currentNext;
      current = null;
      currentNext = null;
      if (sink !== null) {
        try {
          sink.end();
        } catch (err) {
          fail(err);
          return;
        }
      }
      next?.();
    };

    ex.on('entry', (header, source, next) => {
      if (settled) return;
      const hdr = header as unknown as RawHeader;
      const stream = source as unknown as EntryStream;
      const pax = pendingPax;
      pendingPax = null;
      let sink: DataSink | null;
      let entry: TarEntry;
      try {
        entry = toEntry(hdr, pax);
        sink = handler(entry);
      } catch (err) {
        fail(err);
        return;
      }
      // tar-stream gives a directory or an empty entry no data (as Go, for header-only types).
      if (entry.size === 0 || hdr.type === 'directory') {
        try {
          sink?.end();
        } catch (err) {
          fail(err);
          return;
        }
        next();
        return;
      }
      current = sink;
      currentNext = next;
      // Needed: streamx emits 'error' on an entry stream the Extract destroys with an error.
      stream.on('error', failArchive);
      // The same two listeners serve every entry (entries come one at a time): no closures per entry.
      if (sink !== null) stream.on('data', onEntryData);
      stream.on('end', onEntryEnd);
      if (sink === null) stream.resume();
    });
    ex.on('error', failArchive);
    ex.on('finish', () => settle(undefined));

    const onData = (chunk: Buffer | string): void => {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (firstChunk && buf.length > 0) {
        firstChunk = false;
        const compression = compressionOf(buf);
        if (compression !== undefined) {
          fail(new InvalidArchiveError(`the input is ${compression}-compressed; layer tars are unpacked uncompressed`));
          return;
        }
      }
      if (!ex.write(buf)) input.pause();
    };
    let ended = false;
    const onEnd = (): void => {
      ended = true;
      (ex as unknown as { end(): void }).end();
    };
    // A stream destroyed by its producer closes without 'end' (and maybe without 'error').
    const onClose = (): void => {
      if (!ended) fail(new InvalidArchiveError('the tar stream was closed before its end'));
    };
    ex.on('drain', () => {
      if (!settled) input.resume();
    });

    if (signal?.aborted === true) {
      onAbort();
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    input.on('error', fail);
    input.on('end', onEnd);
    input.on('close', onClose);
    input.on('data', onData);
  });
}
