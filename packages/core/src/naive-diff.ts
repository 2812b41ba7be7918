/**
 * NaiveDiffDriver: gives any ProtoDriver (a driver that can store and mount layers) the four diff
 * methods, by mounting layers with get/put and comparing whole trees - moby's
 * daemon/graphdriver/fsdiff.go. Drivers with a cheaper way (overlay reading its upper dir) override
 * what they can and keep this for the rest.
 *
 * Every get is paired with a put on every path: diff releases the parent as soon as the changes
 * are known and the layer when the returned stream ends, fails or is destroyed.
 */
import { Transform, finished, pipeline, type Readable } from 'node:stream';
import { debuglog } from 'node:util';
import { AbortError, pack, unpack } from './archive/index.js';
import { changesDirs, changesSize, exportChanges } from './changes/index.js';
import type {
  ApplyDiffOpts,
  Change,
  CreateOpts,
  DiffOpts,
  Driver,
  IdMappings,
  MountOpts,
  ProtoDriver,
} from './driver.js';
import { GraphDriverError, OperationFailedError } from './errors.js';
import { normalizeParent, validateLayerId } from './id.js';

const debug = debuglog('graphdriver:core');

export interface NaiveDiffOptions {
  /** The store's id mappings: owners in tars are container ids, on disk host ids. */
  idMappings?: IdMappings;
}

function wrapFailure(operation: string, id: string, err: unknown): unknown {
  if (err instanceof GraphDriverError || err instanceof AbortError || (err instanceof Error && err.name === 'AbortError')) return err;
  return new OperationFailedError(operation, id, err);
}

/**
 * Delay the end of `tar` until the second after `started` has begun. Layers applied from a tar
 * have whole-second mtimes, and the tree compare treats a missing sub-second part as equal: a file
 * changed within the same second as the diff would look unchanged to the next diff. moby sleeps
 * the same way when the stream closes.
 */
function endInNextSecond(tar: Readable, started: number): Readable {
  const out = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      cb(null, chunk);
    },
    flush(cb) {
      const wait = (Math.floor(started / 1000) + 1) * 1000 - Date.now();
      if (wait <= 0) cb();
      else setTimeout(cb, wait);
    },
  });
  pipeline(tar, out, () => undefined);
  return out;
}

export class NaiveDiffDriver implements Driver {
  constructor(
    readonly driver: ProtoDriver,
    private readonly opts: NaiveDiffOptions = {},
  ) {}

  get name(): string {
    return this.driver.name;
  }

  get home(): string {
    return this.driver.home;
  }

  create(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.driver.create(id, parent, opts);
  }

  createReadWrite(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.driver.createReadWrite(id, parent, opts);
  }

  remove(id: string): Promise<void> {
    return this.driver.remove(id);
  }

  get(id: string, opts?: MountOpts): Promise<string> {
    return this.driver.get(id, opts);
  }

  put(id: string): Promise<void> {
    return this.driver.put(id);
  }

  exists(id: string): Promise<boolean> {
    return this.driver.exists(id);
  }

  status(): Promise<Array<[string, string]>> {
    return this.driver.status();
  }

  metadata(id: string): Promise<Record<string, string>> {
    return this.driver.metadata(id);
  }

  cleanup(): Promise<void> {
    return this.driver.cleanup();
  }

  private mountOpts(opts: DiffOpts | ApplyDiffOpts): MountOpts | undefined {
    return opts.mountLabel === undefined ? undefined : { mountLabel: opts.mountLabel };
  }

  private release(id: string): void {
    this.driver.put(id).catch((err: unknown) => debug('NaiveDiffDriver: put(%s) failed: %s', id, err));
  }

  /** The layer's changes against `parent` as a layer tar; without a parent, the whole layer. */
  async diff(id: string, parent?: string, opts: DiffOpts = {}): Promise<Readable> {
    const started = Date.now();
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    opts.signal?.throwIfAborted();
    const idMappings = opts.idMappings ?? this.opts.idMappings;
    const layerFs = await this.driver.get(id, this.mountOpts(opts));
    let out: Readable;
    try {
      if (parentId === undefined) {
        out = pack(layerFs, { idMappings, signal: opts.signal });
      } else {
        let changes: Change[];
        const parentFs = await this.driver.get(parentId, this.mountOpts(opts));
        try {
          changes = await changesDirs(layerFs, parentFs, { signal: opts.signal });
        } finally {
          await this.driver.put(parentId);
        }
        out = endInNextSecond(exportChanges(layerFs, changes, { idMappings, signal: opts.signal }), started);
      }
    } catch (err) {
      this.release(id);
      throw wrapFailure('diff', id, err);
    }
    finished(out, () => this.release(id));
    return out;
  }

  /** The layer's changes against `parent` (everything an add without one). */
  async changes(id: string, parent?: string, opts: DiffOpts = {}): Promise<Change[]> {
    validateLayerId(id);
    const parentId = normalizeParent(parent);
    opts.signal?.throwIfAborted();
    const layerFs = await this.driver.get(id, this.mountOpts(opts));
    try {
      if (parentId === undefined) return await changesDirs(layerFs, undefined, { signal: opts.signal });
      const parentFs = await this.driver.get(parentId, this.mountOpts(opts));
      try {
        return await changesDirs(layerFs, parentFs, { signal: opts.signal });
      } finally {
        await this.driver.put(parentId);
      }
    } catch (err) {
      throw wrapFailure('changes', id, err);
    } finally {
      await this.driver.put(id);
    }
  }

  /** Extract a layer tar into layer `id` (whiteouts applied); returns the entries' total size. */
  async applyDiff(id: string, parent: string | undefined, tar: Readable, opts: ApplyDiffOpts = {}): Promise<number> {
    let layerFs: string;
    try {
      validateLayerId(id);
      normalizeParent(parent);
      opts.signal?.throwIfAborted();
      layerFs = await this.driver.get(id, this.mountOpts(opts));
    } catch (err) {
      tar.destroy();
      throw err;
    }
    const started = performance.now();
    try {
      const size = await unpack(layerFs, tar, {
        whiteouts: 'apply',
        idMappings: opts.idMappings ?? this.opts.idMappings,
        ignoreChownErrors: opts.ignoreChownErrors,
        signal: opts.signal,
      });
      debug('NaiveDiffDriver: applied %d bytes to %s in %d ms', size, id, Math.round(performance.now() - started));
      return size;
    } catch (err) {
      tar.destroy(); // a producer upstream (another layer's diff) must learn that nobody reads on
      throw wrapFailure('applyDiff', id, err);
    } finally {
      await this.driver.put(id);
    }
  }

  /** The size of the layer's changes against `parent`, as applyDiff of diff() would count it. */
  async diffSize(id: string, parent?: string, opts: DiffOpts = {}): Promise<number> {
    const changes = await this.changes(id, parent, opts);
    const layerFs = await this.driver.get(id, this.mountOpts(opts));
    try {
      return await changesSize(layerFs, changes, { signal: opts.signal });
    } catch (err) {
      throw wrapFailure('diffSize', id, err);
    } finally {
      await this.driver.put(id);
    }
  }
}
