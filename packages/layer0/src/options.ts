/**
 * layer0's options. The driver's own keys (`layer0.volume_driver`, `layer0.volume_size`,
 * `layer0.volume_opt`; the prefix may be left out) are declared once with core's option schemas and
 * validated: anything else without an `overlay.` (or `overlay2.`) prefix is an InvalidOptionError
 * naming the key. Keys with those prefixes belong to the overlay driver layer0 wraps and are handed
 * to it as they were given - openstorage's layer0 passed its own key to overlay, which refused it.
 *
 * Per layer (`CreateOpts.storageOpt`): `volume` (put the layer on this volume), `size` (the size of
 * a volume made for it; a plain layer's project quota, as overlay takes it) and `inodes` (plain
 * layers only).
 */
import {
  defineOptions,
  InvalidOptionError,
  parseKeyValue,
  parseStorageOpt,
  type DriverOptionsInput,
  type ParsedOptions,
} from '@graphdriver/core';
import { validateVolumeName } from './naming.js';
import { assertKnownVolumeDriver } from './volume-registry.js';

export const layer0Options = defineOptions({
  prefix: 'layer0',
  keys: {
    volume_driver: { type: 'string', description: 'the volume driver container layers live on: loopback (default), dir, or a registered one' },
    volume_size: { type: 'size', min: 1, description: 'size of the volumes made for container layers (loopback default 10G; dir takes none)' },
    volume_opt: {
      type: 'list',
      description: 'key=value options for the volume driver (loopback: fs=ext4|xfs), comma-separated or repeated',
    },
  },
  defaults: { volume_driver: 'loopback', volume_opt: [] },
  validate(o) {
    assertKnownVolumeDriver(o.volume_driver);
    for (const item of o.volume_opt) {
      if (!item.includes('=') || item.startsWith('=')) {
        throw new InvalidOptionError('layer0.volume_opt', `layer0: volume_opt entries are key=value, got ${JSON.stringify(item)}`);
      }
    }
  },
});

export type Layer0Options = ParsedOptions<typeof layer0Options.keys, typeof layer0Options.defaults>;

const OVERLAY_PREFIXES = ['overlay.', 'overlay2.'];

function isOverlayKey(key: string): boolean {
  const k = key.trim().toLowerCase();
  return OVERLAY_PREFIXES.some((p) => k.startsWith(p));
}

/** The options split between layer0 and the overlay driver it wraps, each in the form it was given. */
export interface SplitOptions {
  layer0: DriverOptionsInput;
  overlay: DriverOptionsInput;
}

export function splitOptions(input: DriverOptionsInput | null | undefined): SplitOptions {
  if (input === undefined || input === null) return { layer0: [], overlay: [] };
  if (Array.isArray(input)) {
    const layer0: string[] = [];
    const overlay: string[] = [];
    for (const option of input) {
      const [key] = parseKeyValue(String(option));
      (isOverlayKey(key) ? overlay : layer0).push(String(option));
    }
    return { layer0, overlay };
  }
  const layer0: Record<string, string | number | boolean> = {};
  const overlay: Record<string, string | number | boolean> = {};
  for (const [key, value] of Object.entries(input)) (isOverlayKey(key) ? overlay : layer0)[key] = value;
  return { layer0, overlay };
}

/** `layer0.volume_opt` entries as a record (the last of a key wins). */
export function volumeDriverOptions(o: Layer0Options): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of o.volume_opt) {
    const [k, v] = parseKeyValue(item);
    out[k] = v;
  }
  return out;
}

/** A layer's storageOpt, parsed: the volume asked for, and the rest for the volume or for overlay. */
export interface LayerStorageOpts {
  volume: string | undefined;
  size: number | undefined;
  inodes: number | undefined;
  /** What overlay gets for a plain layer: the record without `volume`, as given. */
  overlay: Record<string, string> | undefined;
}

export function parseLayerStorageOpt(record: Readonly<Record<string, string>> | undefined): LayerStorageOpts {
  let volume: string | undefined;
  const rest: Record<string, string> = {};
  for (const [given, value] of Object.entries(record ?? {})) {
    if (given.trim().toLowerCase() === 'volume') {
      volume = String(value).trim();
      validateVolumeName(volume, given);
    } else {
      rest[given] = value;
    }
  }
  // the same errors overlay would give, before anything is made
  const parsed = parseStorageOpt(rest, ['size', 'inodes'], 'layer0');
  return { volume, size: parsed.size, inodes: parsed.inodes, overlay: Object.keys(rest).length === 0 ? undefined : rest };
}
