/**
 * Reading a layer tar: a streaming framer over the input's chunks that turns header blocks
 * (header-read.ts), PAX records (pax.ts) and GNU long names into complete, validated TarEntry
 * objects and hands each entry's data straight to a synchronous sink, as Go's archive/tar (and so
 * moby) reads them.
 *
 * Why our own and not tar-stream: tar-stream 3.2.2 decodes PAX values as UTF-8 (corrupting binary
 * xattrs), ignores PAX `uid`/`gid`/`mtime`, and makes a stream object per entry, which was half of
 * the JS time of an unpack of many small files.
 *
 * The framer is synchronous: a chunk is consumed completely (headers decoded, data written to the
 * sink) before the next one is taken, so the input's own buffer is the only buffering, whatever
 * the size of an entry. It keeps at most one partial header block, one PAX or GNU long-name body
 * (at most 1 MiB, Go's limit) and the data of one small file that straddles two chunks (so that a
 * small file still reaches its sink in one write).
 */
import type { Readable } from 'node:stream';
import { debuglog } from 'node:util';
import { InvalidArchiveError } from '../errors.js';
import { abortErrorFrom } from './abort.js';
import type { EntryKind } from './header.js';
import {
  BLOCK,
  BLOCK_BAD_CHECKSUM,
  BLOCK_ZERO,
  HeaderFields,
  TF,
  classifyBlock,
  cString,
  decodeHeader,
  describeUnsupportedType,
} from './header-read.js';
import { decodePaxRecords, paxInteger, paxIsSparse, paxString, paxTime, paxXattrs, type PaxTime } from './pax.js';

const debug = debuglog('graphdriver:core');

/** One entry of a layer tar, with PAX records and GNU long names applied. */
export interface TarEntry {
  /** The name as the tar holds it (GNU long name or PAX path applied), not yet normalised. */
  name: string;
  kind: EntryKind;
  /** Permission, set-id and sticky bits (07777). */
  mode: number;
  /** Container ids, as in the tar. */
  uid: number;
  gid: number;
  /** The size the header gives (for links and other header-only kinds no data follows). */
  size: number;
  mtime: PaxTime;
  /** Only when the tar has one (a PAX `atime` record, or a GNU/star header field). */
  atime: PaxTime | undefined;
  /** Symlink target or hard-link target; '' for other kinds. */
  linkname: string;
  devmajor: number;
  devminor: number;
  xattrs: Array<[name: string, value: Buffer]>;
}

/** Receives an entry's data; every call is synchronous and may throw to stop the read. */
export interface DataSink {
  /** `length` bytes of `buf` from `offset`; the bytes are only valid during the call. */
  write(buf: Buffer, offset: number, length: number): void;
  end(): void;
  /** Release what the sink holds (an fd) when the read stops before end(). Must not throw. */
  abort(): void;
}

/** Handles one entry; returns a sink for its data, or null to skip the data. May throw. */
export type EntryHandler = (entry: TarEntry) => DataSink | null;

/** PAX and GNU long-name bodies larger than this are refused (Go's maxSpecialFileSize). */
const MAX_SPECIAL_SIZE = 1 << 20;
/** Files up to this size reach their sink in one write even when they straddle two input chunks. */
const GATHER_SIZE = 64 * 1024;

// Framer states.
const S_HEADER = 0;
const S_DATA = 1;
const S_SPECIAL = 2;
const S_PADDING = 3;
/** One zero block seen: the next block must be zero too (or the input ends). */
const S_END = 4;
/** The end of the archive: whatever follows is drained and ignored, as Go never reads it. */
const S_DONE = 5;

const KIND_OF_TYPEFLAG: Partial<Record<number, EntryKind>> = {
  [TF.REG]: 'file',
  [TF.CONT]: 'file',
  [TF.LINK]: 'link',
  [TF.SYMLINK]: 'symlink',
  [TF.CHAR]: 'char',
  [TF.BLOCK]: 'block',
  [TF.DIR]: 'dir',
  [TF.FIFO]: 'fifo',
};

function paddingOf(size: number): number {
  const rem = size % BLOCK;
  return rem === 0 ? 0 : BLOCK - rem;
}

function compressionOf(b: Uint8Array, off: number, len: number): string | undefined {
  const at = (i: number): number => (i < len ? (b[off + i] as number) : -1);
  if (at(0) === 0x1f && at(1) === 0x8b) return 'gzip';
  if (at(0) === 0x28 && at(1) === 0xb5 && at(2) === 0x2f && at(3) === 0xfd) return 'zstd';
  if (at(0) === 0x42 && at(1) === 0x5a && at(2) === 0x68) return 'bzip2';
  if (at(0) === 0xfd && at(1) === 0x37 && at(2) === 0x7a && at(3) === 0x58 && at(4) === 0x5a && at(5) === 0) return 'xz';
  return undefined;
}

function compressedError(kind: string): InvalidArchiveError {
  return new InvalidArchiveError(
    `not a valid tar: the input is ${kind}-compressed; layer tars are unpacked uncompressed (decompressing is the caller's)`,
  );
}

/**
 * The tar framer: feed it the input's chunks in order with write(), then end() at the end of the
 * input. It calls `handler` for each entry and the returned sink with the entry's data.
 */
export class TarFramer {
  private state = S_HEADER;
  /** Bytes consumed before the current chunk (for offsets in error messages). */
  private consumed = 0;
  private readonly block = Buffer.alloc(BLOCK);
  private blockFill = 0;
  private readonly fields = new HeaderFields();
  /** Data (S_DATA) or body (S_SPECIAL) bytes still to come, then padding to skip. */
  private remaining = 0;
  private padding = 0;
  private sink: DataSink | null = null;
  private entryName: string | undefined;
  private entryDataSize = 0;
  private gatherBuf: Buffer | undefined;
  private gathering = false;
  private gatherFill = 0;
  private special: Buffer | undefined;
  private specialFill = 0;
  private specialType = 0;
  private specialName = '';
  private pax: Map<string, Buffer> | null = null;
  private longName: string | undefined;
  private longLink: string | undefined;
  private trailing = false;

  constructor(private readonly handler: EntryHandler) {}

  write(buf: Buffer): void {
    const len = buf.length;
    let pos = 0;
    while (pos < len) {
      switch (this.state) {
        case S_HEADER:
        case S_END: {
          if (this.blockFill === 0 && len - pos >= BLOCK) {
            // The usual case: the whole block is in this chunk, decode it in place.
            this.onBlock(buf, pos, this.consumed + pos);
            pos += BLOCK;
          } else {
            const n = Math.min(BLOCK - this.blockFill, len - pos);
            buf.copy(this.block, this.blockFill, pos, pos + n);
            this.blockFill += n;
            pos += n;
            if (this.blockFill === BLOCK) {
              this.blockFill = 0;
              this.onBlock(this.block, 0, this.consumed + pos - BLOCK);
            }
          }
          break;
        }
        case S_DATA:
          pos = this.onData(buf, pos, len);
          break;
        case S_PADDING: {
          const n = Math.min(this.padding, len - pos);
          pos += n;
          this.padding -= n;
          if (this.padding === 0) this.state = S_HEADER;
          break;
        }
        case S_SPECIAL: {
          const n = Math.min(this.remaining, len - pos);
          buf.copy(this.special as Buffer, this.specialFill, pos, pos + n);
          this.specialFill += n;
          this.remaining -= n;
          pos += n;
          if (this.remaining === 0) this.finishSpecial();
          break;
        }
        default: // S_DONE
          if (!this.trailing && buf.subarray(pos).some((c) => c !== 0)) {
            this.trailing = true;
            debug('archive: data after the end of the tar ignored (as Go and moby do)');
          }
          pos = len;
      }
    }
    this.consumed += len;
  }

  /** The input ended: fine at an entry boundary or after the end marker, else a truncated tar. */
  end(): void {
    switch (this.state) {
      case S_HEADER:
        if (this.blockFill === 0) {
          if (this.pax !== null || this.longName !== undefined || this.longLink !== undefined) {
            debug('archive: the tar ends after a PAX or GNU long-name header, before its entry (as Go, not an error)');
          }
          return;
        }
        if (this.consumed === this.blockFill) {
          const kind = compressionOf(this.block, 0, this.blockFill);
          if (kind !== undefined) throw compressedError(kind);
          throw new InvalidArchiveError(`not a valid tar: the input is ${this.blockFill} bytes, less than one header block`);
        }
        throw this.truncated(`inside a header block (at byte ${this.consumed - this.blockFill})`);
      case S_DATA:
        throw new InvalidArchiveError(
          `the tar ends inside this entry's data (${this.entryDataSize - this.remaining} of ${this.entryDataSize} bytes)`,
          this.entryName,
        );
      case S_PADDING:
        throw new InvalidArchiveError("the tar ends inside the padding after this entry's data", this.entryName);
      case S_SPECIAL:
        throw new InvalidArchiveError(`the tar ends inside a ${this.specialWhat()} header`, this.specialName);
      case S_END:
        if (this.blockFill !== 0) throw this.truncated('inside its end-of-archive marker');
        return;
      default:
    }
  }

  /** Stop: release the current sink (after a failure). */
  abort(): void {
    const sink = this.sink;
    this.sink = null;
    sink?.abort();
  }

  private truncated(where: string): InvalidArchiveError {
    const after = this.entryName === undefined ? 'before its first entry' : `after entry ${JSON.stringify(this.entryName)}`;
    return new InvalidArchiveError(`the tar is truncated ${where}, ${after}`);
  }

  private onBlock(b: Buffer, off: number, at: number): void {
    const kind = classifyBlock(b, off);
    if (this.state === S_END) {
      if (kind === BLOCK_ZERO) {
        this.state = S_DONE;
        return;
      }
      throw new InvalidArchiveError(`not a valid tar: a zero block at byte ${at - BLOCK} is followed by a non-zero block`);
    }
    if (kind === BLOCK_ZERO) {
      this.state = S_END;
      return;
    }
    if (kind === BLOCK_BAD_CHECKSUM) {
      if (at === 0) {
        const compressed = compressionOf(b, off, BLOCK);
        if (compressed !== undefined) throw compressedError(compressed);
        throw new InvalidArchiveError('not a valid tar: the first header block has a wrong checksum');
      }
      const after = this.entryName === undefined ? '' : `, after entry ${JSON.stringify(this.entryName)}`;
      throw new InvalidArchiveError(`not a valid tar: the header block at byte ${at} has a wrong checksum${after}`);
    }
    decodeHeader(b, off, this.fields);
    const t = this.fields.typeflag;
    if (t === TF.PAX || t === TF.PAX_GLOBAL || t === TF.GNU_LONGNAME || t === TF.GNU_LONGLINK) this.startSpecial();
    else this.startEntry();
  }

  // ---- PAX headers and GNU long names ----------------------------------------------------------

  private specialWhat(): string {
    switch (this.specialType) {
      case TF.PAX:
        return 'PAX extended';
      case TF.PAX_GLOBAL:
        return 'PAX global';
      case TF.GNU_LONGNAME:
        return 'GNU long name';
      default:
        return 'GNU long link';
    }
  }

  private startSpecial(): void {
    const h = this.fields;
    this.specialType = h.typeflag;
    this.specialName = h.name;
    if (h.size < 0 || h.size > MAX_SPECIAL_SIZE) {
      throw new InvalidArchiveError(`${this.specialWhat()} header of ${h.size} bytes (at most ${MAX_SPECIAL_SIZE} are read)`, h.name);
    }
    this.special = Buffer.allocUnsafe(h.size);
    this.specialFill = 0;
    this.remaining = h.size;
    this.padding = paddingOf(h.size);
    this.state = S_SPECIAL;
    if (h.size === 0) this.finishSpecial();
  }

  private finishSpecial(): void {
    const body = (this.special as Buffer).subarray(0, this.specialFill);
    this.special = undefined;
    switch (this.specialType) {
      case TF.PAX:
        // A second 'x' before the entry replaces the first (Go).
        this.pax = decodePaxRecords(body, this.specialName);
        break;
      case TF.PAX_GLOBAL:
        // Checked as strictly as Go does, then ignored, as moby ignores global headers.
        decodePaxRecords(body, this.specialName);
        break;
      case TF.GNU_LONGNAME:
        this.longName = cString(body, 0, body.length);
        break;
      default:
        this.longLink = cString(body, 0, body.length);
    }
    this.state = this.padding > 0 ? S_PADDING : S_HEADER;
  }

  // ---- entries ---------------------------------------------------------------------------------

  private startEntry(): void {
    const h = this.fields;
    let name = h.name;
    let linkname = h.linkname;
    let size = h.size;
    let uid = h.uid;
    let gid = h.gid;
    let mtime: PaxTime = { sec: h.mtime, nsec: 0 };
    let atime: PaxTime | undefined = h.atime === 0 ? undefined : { sec: h.atime, nsec: 0 };
    let xattrs: Array<[string, Buffer]> = [];
    const pax = this.pax;
    if (pax !== null) {
      this.pax = null;
      name = paxString(pax, 'path', name) ?? name;
      linkname = paxString(pax, 'linkpath', name) ?? linkname;
      uid = paxInteger(pax, 'uid', name) ?? uid;
      gid = paxInteger(pax, 'gid', name) ?? gid;
      size = paxInteger(pax, 'size', name) ?? size;
      mtime = paxTime(pax, 'mtime', name) ?? mtime;
      atime = paxTime(pax, 'atime', name) ?? atime;
      xattrs = paxXattrs(pax);
      if (paxIsSparse(pax)) throw new InvalidArchiveError('sparse files are not supported in layer tars', name);
    }
    // Go applies GNU long names after PAX records.
    if (this.longName !== undefined) {
      name = this.longName;
      this.longName = undefined;
    }
    if (this.longLink !== undefined) {
      linkname = this.longLink;
      this.longLink = undefined;
    }
    this.entryName = name;
    const t = h.typeflag;
    const kind = t === TF.REG_A ? (name.endsWith('/') ? 'dir' : 'file') : KIND_OF_TYPEFLAG[t];
    if (kind === undefined) throw new InvalidArchiveError(describeUnsupportedType(t), name);
    if (uid < 0 || gid < 0) throw new InvalidArchiveError(`invalid owner ${uid}:${gid}`, name);
    if (size < 0) throw new InvalidArchiveError(`invalid size ${size}`, name);
    const entry: TarEntry = {
      name,
      kind,
      mode: h.mode & 0o7777,
      uid,
      gid,
      size,
      mtime,
      atime,
      linkname,
      devmajor: h.devmajor,
      devminor: h.devminor,
      xattrs,
    };
    const sink = this.handler(entry);
    // Go: links, symlinks, devices, FIFOs and directories have no data, whatever their size says.
    const dataSize = kind === 'file' ? size : 0;
    if (dataSize === 0) {
      sink?.end();
      return;
    }
    this.sink = sink;
    this.entryDataSize = dataSize;
    this.remaining = dataSize;
    this.padding = paddingOf(dataSize);
    this.gathering = false;
    this.state = S_DATA;
  }

  private onData(buf: Buffer, pos: number, len: number): number {
    const avail = len - pos;
    const sink = this.sink;
    if (this.gathering) {
      const gather = this.gatherBuf as Buffer;
      const n = Math.min(this.remaining, avail);
      buf.copy(gather, this.gatherFill, pos, pos + n);
      this.gatherFill += n;
      this.remaining -= n;
      if (this.remaining === 0) {
        this.gathering = false;
        sink?.write(gather, 0, this.gatherFill);
        this.finishData();
      }
      return pos + n;
    }
    if (avail >= this.remaining) {
      const n = this.remaining;
      this.remaining = 0;
      sink?.write(buf, pos, n);
      this.finishData();
      return pos + n;
    }
    if (sink !== null && this.remaining === this.entryDataSize && this.entryDataSize <= GATHER_SIZE) {
      // A small file split by the chunk boundary: collect it, write it once.
      this.gatherBuf ??= Buffer.allocUnsafe(GATHER_SIZE);
      buf.copy(this.gatherBuf, 0, pos, len);
      this.gatherFill = avail;
      this.gathering = true;
    } else {
      sink?.write(buf, pos, avail);
    }
    this.remaining -= avail;
    return len;
  }

  private finishData(): void {
    const sink = this.sink;
    this.sink = null;
    this.state = this.padding > 0 ? S_PADDING : S_HEADER;
    sink?.end();
  }
}

/** An input chunk as a Buffer: object-mode streams may hand over Uint8Arrays (or strings). */
function asBuffer(chunk: Buffer | Uint8Array | string): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk, 'latin1');
  return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

export interface ReadOptions {
  signal?: AbortSignal;
  /** Called once when reading stops for any reason (success, error, abort), before settling. */
  onSettle?: () => void;
}

/**
 * Reads the tar `input` and calls `handler` for each entry, in order. Resolves when the input
 * ended (after the end-of-archive marker, the rest is drained) and every entry was handled;
 * rejects with the first error: InvalidArchiveError for a corrupt, truncated, compressed or non-tar
 * input, AbortError on abort, the input's own error, or what a handler or sink threw. On failure
 * the input is destroyed and the current sink aborted.
 */
const ignoreError = (): void => undefined;

export function readLayerTar(input: Readable, handler: EntryHandler, opts: ReadOptions = {}): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const framer = new TarFramer(handler);
    const signal = opts.signal;
    let settled = false;
    let ended = false;

    const settle = (err: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.off('close', onClose);
      if (err !== undefined) {
        // The input may still emit an 'error' it queued before (a stream destroyed with an error
        // emits it on the next tick): the failure is reported through our rejection, so keep that
        // emission from becoming an uncaught exception.
        input.on('error', ignoreError);
        framer.abort();
        if (!input.destroyed) input.destroy();
      }
      try {
        opts.onSettle?.();
      } catch (cleanupErr) {
        if (err === undefined) err = cleanupErr;
        else debug('archive: cleanup after a failed read failed too: %s', cleanupErr);
      }
      if (err === undefined) resolve();
      else reject(err);
    };
    const onAbort = (): void => settle(abortErrorFrom(signal as AbortSignal));
    const onError = (err: unknown): void => settle(err ?? new Error('the tar input failed'));
    // A chunk is framed in a microtask rather than in the 'data' event itself: by then the stream
    // has asked its source for the next chunk (a read on the thread pool runs while we write
    // files). More than two chunks waiting pause the input, so memory stays bounded.
    const queue: Buffer[] = [];
    let scheduled = false;
    let paused = false;
    const frameQueued = (): void => {
      scheduled = false;
      if (settled) return;
      try {
        for (let chunk = queue.shift(); chunk !== undefined; chunk = queue.shift()) framer.write(chunk);
      } catch (err) {
        settle(err);
        return;
      }
      if (paused) {
        paused = false;
        input.resume();
      }
    };
    const onData = (chunk: Buffer | Uint8Array | string): void => {
      if (settled) return;
      queue.push(asBuffer(chunk));
      if (queue.length > 2 && !paused) {
        paused = true;
        input.pause();
      }
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(frameQueued);
      }
    };
    const onEnd = (): void => {
      ended = true;
      frameQueued(); // 'end' may come before the microtask
      if (settled) return;
      try {
        framer.end();
      } catch (err) {
        settle(err);
        return;
      }
      settle(undefined);
    };
    // A stream destroyed by its producer closes without 'end' (and maybe without 'error').
    const onClose = (): void => {
      if (!ended) settle(new InvalidArchiveError('the tar stream was closed before its end'));
    };

    if (signal?.aborted === true) {
      onAbort();
      return;
    }
    // A stream that failed or was destroyed before we got it emits nothing any more: say so now
    // rather than wait forever (a producer upstream in a pipeline may fail before the reader starts).
    if (input.errored !== null && input.errored !== undefined) {
      settle(input.errored);
      return;
    }
    if (input.destroyed && !input.readableEnded) {
      settle(new InvalidArchiveError('the tar stream was closed before its end'));
      return;
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    input.on('error', onError);
    input.on('end', onEnd);
    input.on('close', onClose);
    input.on('data', onData);
  });
}

/**
 * The entries of a tar, without their data (which is read and skipped): what `tar -tv` shows.
 * Rejects as readLayerTar does.
 */
export async function listTar(input: Readable, opts: { signal?: AbortSignal } = {}): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  await readLayerTar(
    input,
    (entry) => {
      entries.push(entry);
      return null;
    },
    opts,
  );
  return entries;
}
