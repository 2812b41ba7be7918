/**
 * Where an image's files are read from: an OCI layout directory, or an archive (docker save, OCI
 * archive) through its index. Both answer the same few questions - does this file exist, how big
 * is it, its first bytes, all of it (small JSON), a stream of it - for names that come from the
 * image's own manifests and so are untrusted: a directory is opened with openat2 RESOLVE_IN_ROOT
 * (the kernel keeps '..' and symlinks inside it), an archive resolves names inside itself.
 */
import { closeSync, createReadStream, fstatSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { AT, O, RESOLVE, openat2Sync, isNativeError } from '@graphdriver/native';
import { InvalidImageError } from '../errors.js';
import { ArchiveIndex } from './tar-index.js';

export interface SourceFile {
  size: number;
}

export interface ImageSource {
  /** The path given to import, for messages. */
  readonly location: string;
  readonly kind: 'directory' | 'archive';
  /** The regular file `name` leads to, or undefined when there is none. */
  stat(name: string): Promise<SourceFile | undefined>;
  /** Up to `n` bytes from the start of `name`. */
  head(name: string, n: number): Promise<Buffer>;
  /** The whole of `name`, refused beyond `limit` bytes (manifests and configs are small). */
  readAll(name: string, limit: number): Promise<Buffer>;
  /** A stream of `name`'s bytes. */
  open(name: string): Readable;
  /** Releases what the source holds (a directory fd). */
  close(): void;
}

function tooLarge(location: string, name: string, size: number, limit: number): InvalidImageError {
  return new InvalidImageError(location, `${name} is ${size} bytes, more than the ${limit} a manifest or config may have`);
}

/** A directory, every name opened beneath it by the kernel's RESOLVE_IN_ROOT. */
export class DirectorySource implements ImageSource {
  readonly location: string;
  readonly kind = 'directory' as const;
  readonly #rootFd: number;

  constructor(location: string) {
    this.location = location;
    this.#rootFd = openat2Sync(AT.FDCWD, location, { flags: O.RDONLY | O.DIRECTORY | O.CLOEXEC });
  }

  /** An fd of the regular file `name`, or undefined when there is none. */
  #openFile(name: string): number | undefined {
    let fd: number;
    try {
      fd = openat2Sync(this.#rootFd, name === '' ? '.' : name, {
        flags: O.RDONLY | O.CLOEXEC | O.NONBLOCK,
        resolve: RESOLVE.IN_ROOT | RESOLVE.NO_MAGICLINKS,
      });
    } catch (err) {
      if (isNativeError(err) && ['ENOENT', 'ENOTDIR', 'ELOOP'].includes(err.code)) return undefined;
      throw err;
    }
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      return undefined;
    }
    return fd;
  }

  async stat(name: string): Promise<SourceFile | undefined> {
    const fd = this.#openFile(name);
    if (fd === undefined) return undefined;
    try {
      return { size: fstatSync(fd).size };
    } finally {
      closeSync(fd);
    }
  }

  async head(name: string, n: number): Promise<Buffer> {
    const fd = this.#openFile(name);
    if (fd === undefined) throw missing(this.location, name);
    try {
      const buf = Buffer.alloc(n);
      const got = readSync(fd, buf, 0, n, 0);
      return buf.subarray(0, got);
    } finally {
      closeSync(fd);
    }
  }

  async readAll(name: string, limit: number): Promise<Buffer> {
    const fd = this.#openFile(name);
    if (fd === undefined) throw missing(this.location, name);
    try {
      const size = fstatSync(fd).size;
      if (size > limit) throw tooLarge(this.location, name, size, limit);
      const buf = Buffer.alloc(size);
      let off = 0;
      while (off < size) {
        const got = readSync(fd, buf, off, size - off, off);
        if (got === 0) break;
        off += got;
      }
      return buf.subarray(0, off);
    } finally {
      closeSync(fd);
    }
  }

  open(name: string): Readable {
    const fd = this.#openFile(name);
    if (fd === undefined) throw missing(this.location, name);
    return createReadStream('', { fd, highWaterMark: 1 << 20 });
  }

  close(): void {
    closeSync(this.#rootFd);
  }
}

/** An archive read through its index with positioned streams. */
export class ArchiveSource implements ImageSource {
  readonly location: string;
  readonly kind = 'archive' as const;
  readonly index: ArchiveIndex;

  constructor(location: string, index: ArchiveIndex) {
    this.location = location;
    this.index = index;
  }

  #file(name: string): { offset: number; size: number } | undefined {
    const e = this.index.lookup(name);
    return e?.type === 'file' ? e : undefined;
  }

  async stat(name: string): Promise<SourceFile | undefined> {
    const e = this.#file(name);
    return e === undefined ? undefined : { size: e.size };
  }

  async head(name: string, n: number): Promise<Buffer> {
    const e = this.#file(name);
    if (e === undefined) throw missing(this.location, name);
    return readRange(this.index.file, e.offset, Math.min(n, e.size));
  }

  async readAll(name: string, limit: number): Promise<Buffer> {
    const e = this.#file(name);
    if (e === undefined) throw missing(this.location, name);
    if (e.size > limit) throw tooLarge(this.location, name, e.size, limit);
    return readRange(this.index.file, e.offset, e.size);
  }

  open(name: string): Readable {
    const e = this.#file(name);
    if (e === undefined) throw missing(this.location, name);
    if (e.size === 0) return Readable.from([]);
    return createReadStream(this.index.file, { start: e.offset, end: e.offset + e.size - 1, highWaterMark: 1 << 20 });
  }

  close(): void {}
}

async function readRange(file: string, offset: number, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  if (length === 0) return Buffer.alloc(0);
  for await (const c of createReadStream(file, { start: offset, end: offset + length - 1 })) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

function missing(location: string, name: string): InvalidImageError {
  return new InvalidImageError(location, `${name} is missing`);
}
