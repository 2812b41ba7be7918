/**
 * The command line's own records beside a driver's layers, as moby keeps its layerdb and
 * repositories.json beside the graph driver: which layer is whose parent, which came from which
 * diff id, their sizes, and the images imported with their tags. Drivers know layers, not parents
 * or tags, so this is what `ls`, `diff` (against the parent) and `rmi` read.
 *
 * One JSON file per driver, `<root>/image/<driver>/store.json`, written atomically (a temporary
 * file, fsync, rename, fsync of the directory): a reader sees the old or the new file, never half.
 * Changes are made under a lock (lock.ts) on a copy read inside it, so two commands never lose
 * each other's records. A layer is recorded only once it is complete: a layer the driver has and
 * this file does not is the remains of an interrupted command (or made by another program).
 */
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode, InvalidOptionError, LayerUnknownError, writeFileAtomic } from '@graphdriver/core';
import { StoreError } from './errors.js';
import { acquireLock, type LockOptions } from './lock.js';

export interface LayerRecord {
  id: string;
  parent?: string;
  /** A container (read-write) layer rather than an image layer. */
  readWrite: boolean;
  /** ISO 8601 time the layer was made. */
  created: string;
  /** sha256 of the uncompressed tar it was made from (imported and applied layers). */
  diffId?: string;
  /** The blob it was imported from, as the image names it. */
  compressedDigest?: string;
  /** Bytes of file content applyDiff reported. */
  size?: number;
}

export interface ImageRecord {
  /** `sha256:<hex>` of the image's config: moby's image id. */
  id: string;
  tags: string[];
  /** Layer ids (hex of the chain ids), bottom first. */
  layers: string[];
  diffIds: string[];
  os?: string;
  architecture?: string;
  /** The config's `created`. */
  created?: string;
  /** When it was imported, and from what. */
  imported: string;
  format: string;
}

interface StoreFile {
  version: 1;
  layers: Record<string, LayerRecord>;
  images: Record<string, ImageRecord>;
}

export const STORE_VERSION = 1;

/** `<root>/image/<driver>`: the directory of a driver's records. */
export function storeDir(root: string, driver: string): string {
  return join(root, 'image', driver);
}

export class Store {
  readonly dir: string;
  readonly file: string;
  readonly #layers: Map<string, LayerRecord>;
  readonly #images: Map<string, ImageRecord>;

  private constructor(dir: string, data: StoreFile) {
    this.dir = dir;
    this.file = join(dir, 'store.json');
    this.#layers = new Map(Object.entries(data.layers));
    this.#images = new Map(Object.entries(data.images));
  }

  /** The store of `driver` under `root` as it is on disk (empty when there is none yet). */
  static async read(root: string, driver: string): Promise<Store> {
    const dir = storeDir(root, driver);
    const file = join(dir, 'store.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return new Store(dir, { version: 1, layers: {}, images: {} });
      throw new StoreError(file, `cannot be read: ${(err as Error).message}`, { cause: err });
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new StoreError(file, `is not valid JSON (${(err as Error).message}); move it away to start over`, { cause: err });
    }
    const d = data as Partial<StoreFile> | null;
    if (typeof d !== 'object' || d === null || d.version !== STORE_VERSION || typeof d.layers !== 'object' || typeof d.images !== 'object') {
      throw new StoreError(file, `is not a graphdriver store of version ${STORE_VERSION}`);
    }
    return new Store(dir, d as StoreFile);
  }

  /**
   * Runs `fn` with the store locked and freshly read; what `fn` changes is saved by `fn` calling
   * save() (as often as it wants: import saves after each layer). The lock is released after.
   */
  static async locked<T>(root: string, driver: string, fn: (store: Store) => Promise<T>, opts: LockOptions = {}): Promise<T> {
    const dir = storeDir(root, driver);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const release = await acquireLock(join(dir, 'lock'), opts);
    try {
      return await fn(await Store.read(root, driver));
    } finally {
      await release();
    }
  }

  async save(): Promise<void> {
    const data: StoreFile = {
      version: 1,
      layers: Object.fromEntries([...this.#layers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
      images: Object.fromEntries(this.#images),
    };
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    try {
      await writeFileAtomic(this.file, `${JSON.stringify(data, null, 1)}\n`);
    } catch (err) {
      throw new StoreError(this.file, `cannot be written: ${(err as Error).message}`, { cause: err });
    }
  }

  // ---- layers ----------------------------------------------------------------------------------

  layers(): LayerRecord[] {
    return [...this.#layers.values()];
  }

  layer(id: string): LayerRecord | undefined {
    return this.#layers.get(id);
  }

  putLayer(rec: LayerRecord): void {
    this.#layers.set(rec.id, rec);
  }

  deleteLayer(id: string): void {
    this.#layers.delete(id);
  }

  /** Recorded layers whose parent is `id`. */
  children(id: string): string[] {
    return [...this.#layers.values()].filter((l) => l.parent === id).map((l) => l.id);
  }

  /**
   * A layer id as the user typed it: the id itself, or a unique prefix of a recorded one (as
   * docker takes `docker rm 3f2`). Unknown names are returned as they are, for the driver to judge.
   */
  resolveLayer(name: string): string {
    if (this.#layers.has(name)) return name;
    const matches = [...this.#layers.keys()].filter((id) => id.startsWith(name));
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new InvalidOptionError('id', `layer id prefix ${JSON.stringify(name)} is ambiguous: it starts ${matches.length} layers (${matches.slice(0, 3).join(', ')}...)`);
    }
    return name;
  }

  // ---- images ----------------------------------------------------------------------------------

  images(): ImageRecord[] {
    return [...this.#images.values()];
  }

  /** Images that use layer `id`. */
  imagesUsing(id: string): ImageRecord[] {
    return [...this.#images.values()].filter((img) => img.layers.includes(id));
  }

  /** Images whose top layer is `id`. */
  imagesTopping(id: string): ImageRecord[] {
    return [...this.#images.values()].filter((img) => img.layers[img.layers.length - 1] === id);
  }

  /**
   * An image by tag (`demo:latest`, `demo` for `demo:latest`, docker's `docker.io/library/` prefix
   * optional) or by id (`sha256:<hex>`, or a unique prefix of the hex).
   */
  findImage(ref: string): ImageRecord | undefined {
    const all = [...this.#images.values()];
    const candidates = [ref, `${ref}:latest`, `docker.io/library/${ref}`, `docker.io/library/${ref}:latest`, `docker.io/${ref}`, `docker.io/${ref}:latest`];
    for (const c of candidates) {
      const byTag = all.find((img) => img.tags.includes(c));
      if (byTag !== undefined) return byTag;
    }
    const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
    if (!/^[0-9a-f]{1,64}$/.test(hex)) return undefined;
    const byId = all.filter((img) => img.id.slice(7).startsWith(hex));
    if (byId.length > 1) {
      throw new InvalidOptionError('image', `image id prefix ${JSON.stringify(ref)} is ambiguous: it starts ${byId.length} images`);
    }
    return byId[0];
  }

  getImage(ref: string): ImageRecord {
    const img = this.findImage(ref);
    if (img === undefined) throw new LayerUnknownError(ref, 'image');
    return img;
  }

  /** Records `img`; a tag it has moves to it from any image that had it (as docker load does). */
  putImage(img: ImageRecord): void {
    for (const other of this.#images.values()) {
      if (other.id === img.id) continue;
      other.tags = other.tags.filter((t) => !img.tags.includes(t));
    }
    const prior = this.#images.get(img.id);
    if (prior !== undefined) img.tags = [...new Set([...prior.tags, ...img.tags])];
    this.#images.set(img.id, img);
  }

  deleteImage(id: string): void {
    this.#images.delete(id);
  }
}
