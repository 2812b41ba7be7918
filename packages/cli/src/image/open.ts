/**
 * From what the user gave `import` to the images in it: a directory is an OCI layout; a file is
 * an archive, decompressed first into a spool file when it is gzip or zstd (`docker save | gzip`),
 * as is standard input (`-`), since archives are read in random order; the archive's contents then
 * say which format it is: `manifest.json` is docker save (docker load's rule: it wins over an OCI
 * index in the same archive), `index.json` an OCI layout.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { errorCode, InvalidArchiveError } from '@graphdriver/core';
import { SNIFF_BYTES, decompressorFor, detectCompression, sniff, zlibErrorAsArchiveError } from '../decompress.js';
import { InvalidImageError } from '../errors.js';
import { readDockerArchive } from './docker.js';
import { readOciLayout } from './oci.js';
import type { ImagePlan } from './plan.js';
import { ArchiveIndex, NotATarError } from './tar-index.js';
import { ArchiveSource, DirectorySource, type ImageSource } from './source.js';

export interface OpenedImages {
  source: ImageSource;
  images: ImagePlan[];
  /** Closes the source and removes the spool file, if any. */
  close(): Promise<void>;
}

export interface OpenImagesOptions {
  /** A directory for the spool file (the store's; removed again by close()). */
  spoolDir: string;
  signal?: AbortSignal;
  stdin?: Readable;
}

async function spool(input: Readable, spoolDir: string, what: string, signal: AbortSignal | undefined): Promise<{ file: string; dir: string }> {
  const dir = await mkdtemp(join(spoolDir, 'import-'));
  const file = join(dir, 'archive.tar');
  try {
    const { head, stream } = await sniff(input, SNIFF_BYTES, signal);
    const decompressor = decompressorFor(detectCompression(head), what);
    const out = createWriteStream(file, { mode: 0o600 });
    const opts = signal === undefined ? {} : { signal };
    await (decompressor === undefined ? pipeline(stream, out, opts) : pipeline(stream, decompressor, out, opts)).catch((err: unknown) => {
      throw zlibErrorAsArchiveError(err, what);
    });
    return { file, dir };
  } catch (err) {
    input.destroy();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

async function readHead(file: string, n: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(n);
    const { bytesRead } = await fh.read(buf, 0, n, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** The index of an archive file, with the name the user gave in what goes wrong. */
async function indexArchive(file: string, what: string, signal: AbortSignal | undefined): Promise<ArchiveIndex> {
  try {
    return await ArchiveIndex.read(file, signal);
  } catch (err) {
    if (err instanceof NotATarError) {
      throw new InvalidImageError(what, 'is not an image: neither an OCI layout directory nor a tar archive (docker save, OCI archive)', { cause: err });
    }
    if (err instanceof InvalidArchiveError) throw new InvalidArchiveError(`${what}: ${err.message}`, undefined, { cause: err });
    throw err;
  }
}

/** Opens `path` (a file, a directory, or '-' for standard input) and reads the images it holds. */
export async function openImages(path: string, opts: OpenImagesOptions): Promise<OpenedImages> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const close = async (): Promise<void> => {
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
  };
  try {
    let source: ImageSource;
    if (path === '-') {
      const spooled = await spool(opts.stdin ?? process.stdin, opts.spoolDir, 'standard input', opts.signal);
      cleanups.push(() => rm(spooled.dir, { recursive: true, force: true }));
      source = new ArchiveSource('standard input', await indexArchive(spooled.file, 'standard input', opts.signal));
    } else {
      const location = resolve(path);
      let st;
      try {
        st = await stat(location);
      } catch (err) {
        if (errorCode(err) === 'ENOENT') throw new InvalidImageError(path, 'no such file or directory', { cause: err });
        throw err;
      }
      if (st.isDirectory()) {
        source = new DirectorySource(location);
      } else if (st.isFile()) {
        const head = await readHead(location, SNIFF_BYTES);
        let file = location;
        if (detectCompression(head) !== 'none') {
          const spooled = await spool(createReadStream(location, { highWaterMark: 1 << 20 }), opts.spoolDir, path, opts.signal);
          cleanups.push(() => rm(spooled.dir, { recursive: true, force: true }));
          file = spooled.file;
        }
        source = new ArchiveSource(path, await indexArchive(file, path, opts.signal));
      } else {
        throw new InvalidImageError(path, 'is neither a file nor a directory');
      }
    }
    cleanups.push(() => source.close());
    const images = await readImages(source);
    return { source, images, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The images of a source, by the files it has. */
export async function readImages(source: ImageSource): Promise<ImagePlan[]> {
  if ((await source.stat('manifest.json')) !== undefined) return readDockerArchive(source);
  if ((await source.stat('index.json')) !== undefined) {
    return readOciLayout(source, source.kind === 'directory' ? 'oci-layout' : 'oci-archive');
  }
  if ((await source.stat('repositories')) !== undefined) {
    throw new InvalidImageError(source.location, 'is a docker save archive of the format before Docker 1.10 (no manifest.json), which graphdriver does not read');
  }
  throw new InvalidImageError(
    source.location,
    `is not an image: ${source.kind === 'directory' ? 'the directory' : 'the archive'} has neither manifest.json (docker save) nor index.json (OCI)`,
  );
}
