/**
 * Counting the entries of a tar as it streams past, for progress ("1,234 entries"): a pass-through
 * that follows the 512-byte block structure (header, data rounded up to a block) without decoding
 * anything but each header's size and type. PAX and GNU long-name headers describe the entry that
 * follows and are not counted. It never fails: a malformed tar is the reader's to refuse.
 */
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;
/** Typeflags of headers that belong to the next entry: PAX ('x', 'g'), GNU long name and link ('L', 'K'). */
const META_TYPES = new Set([0x78, 0x67, 0x4c, 0x4b]);
/** '1'..'6': hard link, symlink, char and block device, directory, FIFO. */
const HEADER_ONLY_TYPES = new Set([0x31, 0x32, 0x33, 0x34, 0x35, 0x36]);

function headerSize(b: Buffer): number {
  // base-256 (GNU) for sizes past 8 GiB, else octal
  if ((b[124]! & 0x80) !== 0) {
    let n = 0;
    for (let i = 125; i < 136; i++) n = n * 256 + b[i]!;
    return n;
  }
  const text = b.toString('latin1', 124, 136).replace(/[\0 ]+$/, '').trim();
  const n = text === '' ? 0 : parseInt(text, 8);
  return Number.isFinite(n) ? n : 0;
}

export class TarEntryCounter extends Transform {
  #entries = 0;
  #header = Buffer.alloc(BLOCK);
  #headerFill = 0;
  /** Data and padding bytes to pass before the next header. */
  #skip = 0;
  #ended = false;

  constructor() {
    super({ highWaterMark: 1 << 20 });
  }

  get entries(): number {
    return this.#entries;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let off = 0;
    while (off < chunk.length && !this.#ended) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - off);
        this.#skip -= n;
        off += n;
        continue;
      }
      const n = Math.min(BLOCK - this.#headerFill, chunk.length - off);
      chunk.copy(this.#header, this.#headerFill, off, off + n);
      this.#headerFill += n;
      off += n;
      if (this.#headerFill < BLOCK) break;
      this.#headerFill = 0;
      if (this.#header.every((x) => x === 0)) {
        this.#ended = true; // the end-of-archive blocks
        break;
      }
      const size = headerSize(this.#header);
      const type = this.#header[156]!;
      if (!META_TYPES.has(type)) this.#entries++;
      // hard links, symlinks, devices, directories and FIFOs carry no data whatever the size says (Go's rule)
      this.#skip = HEADER_ONLY_TYPES.has(type) ? 0 : Math.ceil(size / BLOCK) * BLOCK;
    }
    cb(null, chunk);
  }
}
