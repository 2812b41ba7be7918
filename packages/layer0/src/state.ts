/**
 * layer0's persisted state, `<home>/layer0.json` - what openstorage's layer0 kept in a map in
 * memory and lost on every restart:
 *
 *  - `inits`: the `<X>-init` layers made, by X, with the image below them (the parent of the init
 *    layer; volumes are named after it);
 *  - `containers`: every layer that lives (or lived) on a volume, by id: the volume's name and id,
 *    the volume driver, the image, and the phase: `creating` (volume being set up, overlay layer
 *    being moved in), `live`, `removing` (upper being saved), `saved` (removed; its upper waits in
 *    the volume for the layer to be made again).
 *
 * The file is rewritten whole (atomically) on every change; changes are per container, rare next
 * to gets and puts. Writes are queued so that two changes never race each other to the disk.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode, isValidLayerId, OperationFailedError, writeFileAtomic } from '@graphdriver/core';
import { isValidVolumeName } from './naming.js';

export const STATE_FILE = 'layer0.json';
const VERSION = 1;

export type ContainerPhase = 'creating' | 'live' | 'removing' | 'saved';
const PHASES: readonly ContainerPhase[] = ['creating', 'live', 'removing', 'saved'];

export interface InitEntry {
  /** The parent of `<X>-init`; undefined when it has none. */
  image: string | undefined;
}

export interface ContainerEntry {
  volume: string;
  volumeId: string;
  driver: string;
  image: string | undefined;
  /** Asked for with storageOpt `volume` (else found or made after the image). */
  explicit: boolean;
  phase: ContainerPhase;
}

interface StateFile {
  version: number;
  inits: Record<string, { image: string | null }>;
  containers: Record<string, Omit<ContainerEntry, 'image'> & { image: string | null }>;
}

export class Layer0State {
  readonly path: string;
  readonly inits = new Map<string, InitEntry>();
  readonly containers = new Map<string, ContainerEntry>();
  #queue: Promise<void> = Promise.resolve();

  private constructor(home: string) {
    this.path = join(home, STATE_FILE);
  }

  /** The state of `home` (empty when there is no state file yet). A garbled file is an error, not a fresh start. */
  static async load(home: string): Promise<Layer0State> {
    const state = new Layer0State(home);
    let text: string;
    try {
      text = await readFile(state.path, 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return state;
      throw new OperationFailedError(`reading ${state.path}`, undefined, err);
    }
    try {
      state.#parse(JSON.parse(text));
    } catch (err) {
      // forgetting which volumes hold which containers would strand their data: refuse to start
      throw new OperationFailedError(`reading ${state.path}`, undefined, err);
    }
    return state;
  }

  #parse(raw: unknown): void {
    if (typeof raw !== 'object' || raw === null) throw new Error('not a JSON object');
    const file = raw as Partial<StateFile>;
    if (file.version !== VERSION) throw new Error(`unknown version ${JSON.stringify(file.version)}`);
    for (const [id, e] of Object.entries(file.inits ?? {})) {
      if (!isValidLayerId(id)) throw new Error(`bad layer id ${JSON.stringify(id)} in inits`);
      const image = e?.image ?? null;
      if (image !== null && !isValidLayerId(image)) throw new Error(`bad image id ${JSON.stringify(image)} for ${id}`);
      this.inits.set(id, { image: image ?? undefined });
    }
    for (const [id, e] of Object.entries(file.containers ?? {})) {
      if (!isValidLayerId(id)) throw new Error(`bad layer id ${JSON.stringify(id)} in containers`);
      if (typeof e !== 'object' || e === null) throw new Error(`bad entry for ${id}`);
      if (!isValidVolumeName(e.volume) || typeof e.volumeId !== 'string' || e.volumeId === '') throw new Error(`bad volume of ${id}`);
      if (typeof e.driver !== 'string' || e.driver === '') throw new Error(`bad volume driver of ${id}`);
      if (!PHASES.includes(e.phase)) throw new Error(`bad phase ${JSON.stringify(e.phase)} of ${id}`);
      const image = e.image ?? null;
      if (image !== null && !isValidLayerId(image)) throw new Error(`bad image id of ${id}`);
      this.containers.set(id, {
        volume: e.volume,
        volumeId: e.volumeId,
        driver: e.driver,
        image: image ?? undefined,
        explicit: e.explicit === true,
        phase: e.phase,
      });
    }
  }

  #serialize(): string {
    const file: StateFile = { version: VERSION, inits: {}, containers: {} };
    for (const [id, e] of [...this.inits].sort(([a], [b]) => (a < b ? -1 : 1))) file.inits[id] = { image: e.image ?? null };
    for (const [id, e] of [...this.containers].sort(([a], [b]) => (a < b ? -1 : 1))) {
      file.containers[id] = { volume: e.volume, volumeId: e.volumeId, driver: e.driver, image: e.image ?? null, explicit: e.explicit, phase: e.phase };
    }
    return `${JSON.stringify(file, null, 2)}\n`;
  }

  /** Writes the state as it is now; resolves when this write (and every one before it) is on disk. */
  save(): Promise<void> {
    const next = this.#queue.then(() => writeFileAtomic(this.path, this.#serialize()));
    // one failed write must not poison the ones after it; the caller of this one sees its error
    this.#queue = next.catch(() => undefined);
    return next;
  }

  /** The layers other than `except` that are on volume `volume` of `driver` now, or were last (saved). */
  holdersOf(driver: string, volume: string, except?: string): Array<[string, ContainerEntry]> {
    return [...this.containers].filter(([id, e]) => id !== except && e.driver === driver && e.volume === volume);
  }

  /** Containers whose phase is not `saved`: their volumes are (or should be) mounted. */
  active(): Array<[string, ContainerEntry]> {
    return [...this.containers].filter(([, e]) => e.phase !== 'saved');
  }
}
