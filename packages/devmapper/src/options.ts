/**
 * The devmapper driver's options, declared once with core's option schemas: every `dm.*` key moby's
 * devicemapper accepts that means something here, with moby's defaults (basesize 10G, loop data
 * 100G, loop metadata 2G, 64K pool blocks, 10% minimum free space, discards on loop-file pools,
 * deferred removal and deletion on), plus the two keys of graphdriver's own (`dm.backend`, which
 * pool backend to use, and `dm.reflink_pooldir`, an existing xfs/btrfs directory for the reflink
 * pool). Keys moby accepts that would make us do work we do not do (direct-lvm setup) are refused
 * with a message that says so; `override_udev_sync_check` and `libdm_log_level` are taken and have
 * no effect (no udev, no libdevmapper: the ioctls are our own). Anything else is an
 * InvalidOptionError that names the key.
 *
 * `resolveDmOptions` turns the parsed record into the settings the DeviceSet uses, with moby's
 * cross-key rules (blkdiscard off by default on raw devices and user pools, deferred deletion only
 * with deferred removal).
 */
import { defineOptions, InvalidOptionError, type DriverOptionsInput, type ParsedOptions } from '@graphdriver/core';

export type FsType = 'ext4' | 'xfs';
export type BackendChoice = 'auto' | 'thin' | 'reflink';

const KiB = 1024;
const GiB = 1024 ** 3;

/** moby keys that set up LVM for the user; graphdriver never creates volume groups. */
const DIRECT_LVM_KEYS = [
  'directlvm_device',
  'directlvm_device_force',
  'thinp_percent',
  'thinp_metapercent',
  'thinp_autoextend_percent',
  'thinp_autoextend_threshold',
] as const;

export const dmOptions = defineOptions({
  prefix: 'dm',
  keys: {
    basesize: { type: 'size', min: 1, description: 'size of the base device, and so of every layer\'s filesystem (default 10G); a larger value on restart grows the base, a smaller one is refused' },
    loopdatasize: { type: 'size', min: 1, description: 'size of the sparse data file of a loop-file pool (default 100G); grows on restart, never shrinks' },
    loopmetadatasize: { type: 'size', min: 1, description: 'size of the sparse metadata file of a dm-thin loop-file pool (default 2G); grows on restart, never shrinks' },
    fs: { type: 'enum', values: ['ext4', 'xfs'], description: 'filesystem of the base device (default xfs where the kernel has it, else ext4)' },
    mkfsarg: { type: 'list', separator: '\u0000', description: 'one extra argument for mkfs of the base device (repeat the key for more)' },
    mountopt: { type: 'list', description: 'mount options for every layer mount (comma-separated; repeats add)' },
    thinpooldev: { type: 'string', description: 'an existing dm-thin pool (name or /dev/mapper/name) to use instead of making one' },
    datadev: { type: 'path', description: 'block device for the data of a pool the driver makes (dm-thin)' },
    metadatadev: { type: 'path', description: 'block device for the metadata of a pool the driver makes (dm-thin)' },
    blkdiscard: { type: 'boolean', description: 'discard a device\'s blocks when it is deleted (default true on loop-file pools, false on devices)' },
    blocksize: { type: 'size', min: 64 * KiB, max: GiB, description: 'dm-thin pool block size (default 64K; a multiple of 64K)' },
    use_deferred_removal: { type: 'boolean', description: 'deactivate a busy device when its last user lets go instead of failing (default true)' },
    use_deferred_deletion: { type: 'boolean', description: 'delete a busy device later, from a background sweep, instead of failing (default true; needs deferred removal)' },
    min_free_space: { type: 'string', description: 'refuse new devices when less than this share of the pool is free, e.g. 10% (default 10%)' },
    xfs_nospace_max_retries: { type: 'integer', min: 0, description: 'max_retries of xfs on ENOSPC for layer filesystems (error/metadata/ENOSPC)' },
    override_udev_sync_check: { type: 'boolean', description: 'accepted for moby compatibility; no effect (no udev is used)' },
    libdm_log_level: { type: 'integer', min: 2, max: 7, description: 'accepted for moby compatibility; no effect (no libdevmapper is used)' },
    backend: { type: 'enum', values: ['auto', 'thin', 'reflink'], description: 'pool backend: dm-thin, the reflink pool, or auto (dm-thin when /dev/mapper/control opens; the backend a store was made with otherwise)' },
    reflink_pooldir: { type: 'path', description: 'a directory on an existing xfs (reflink=1) or btrfs for the reflink pool, instead of a loop-mounted image' },
    directlvm_device: { type: 'string', description: 'refused: direct-lvm setup is not supported' },
    directlvm_device_force: { type: 'string', description: 'refused: direct-lvm setup is not supported' },
    thinp_percent: { type: 'string', description: 'refused: direct-lvm setup is not supported' },
    thinp_metapercent: { type: 'string', description: 'refused: direct-lvm setup is not supported' },
    thinp_autoextend_percent: { type: 'string', description: 'refused: direct-lvm setup is not supported' },
    thinp_autoextend_threshold: { type: 'string', description: 'refused: direct-lvm setup is not supported' },
  },
  defaults: {
    basesize: 10 * GiB,
    loopdatasize: 100 * GiB,
    loopmetadatasize: 2 * GiB,
    mkfsarg: [],
    mountopt: [],
    blocksize: 64 * KiB,
    use_deferred_removal: true,
    use_deferred_deletion: true,
    min_free_space: '10%',
    backend: 'auto',
  },
  validate(o) {
    for (const key of DIRECT_LVM_KEYS) {
      if ((o as Record<string, unknown>)[key] !== undefined) {
        throw new InvalidOptionError(`dm.${key}`, `dm: dm.${key} is not supported: graphdriver does not set up direct-lvm; make a thin pool and give it with dm.thinpooldev`);
      }
    }
    if (o.blocksize % (64 * KiB) !== 0) {
      throw new InvalidOptionError('dm.blocksize', `dm: invalid value for dm.blocksize: ${o.blocksize} bytes is not a multiple of 64K (dm-thin pool blocks are 64K to 1G in 64K steps)`);
    }
    parseMinFreeSpace(o.min_free_space);
    if (o.thinpooldev !== undefined && (o.datadev !== undefined || o.metadatadev !== undefined)) {
      throw new InvalidOptionError('dm.thinpooldev', 'dm: dm.thinpooldev names a pool that exists; dm.datadev and dm.metadatadev are for a pool the driver makes - give one or the other');
    }
    if ((o.datadev === undefined) !== (o.metadatadev === undefined)) {
      throw new InvalidOptionError(o.datadev === undefined ? 'dm.datadev' : 'dm.metadatadev', 'dm: dm.datadev and dm.metadatadev go together');
    }
    if (o.reflink_pooldir !== undefined && o.backend === 'thin') {
      throw new InvalidOptionError('dm.reflink_pooldir', 'dm: dm.reflink_pooldir is the reflink pool\'s directory; it cannot be used with dm.backend=thin');
    }
    const thinOnly = (['thinpooldev', 'datadev', 'metadatadev'] as const).find((k) => o[k] !== undefined);
    if (thinOnly !== undefined && (o.backend === 'reflink' || o.reflink_pooldir !== undefined)) {
      throw new InvalidOptionError(`dm.${thinOnly}`, `dm: dm.${thinOnly} names a device for the dm-thin backend; it cannot be used with the reflink pool`);
    }
  },
});

export type ParsedDmOptions = ParsedOptions<typeof dmOptions.keys, typeof dmOptions.defaults>;

/** `10%` -> 10. moby requires the % sign and a value below 100. */
export function parseMinFreeSpace(value: string): number {
  const m = /^(\d+)%$/.exec(value.trim());
  if (m === null) {
    throw new InvalidOptionError('dm.min_free_space', `dm: option dm.min_free_space requires a percentage with a % suffix, e.g. 10% (got ${JSON.stringify(value)})`);
  }
  const n = Number(m[1]);
  if (n >= 100) throw new InvalidOptionError('dm.min_free_space', `dm: invalid value ${JSON.stringify(value)} for option dm.min_free_space: must be below 100%`);
  return n;
}

/** What the DeviceSet works with: the options resolved, cross-key defaults applied. */
export interface DmSettings {
  baseSize: number;
  /** True when dm.basesize was given: only then is the base device grown to it (moby's userBaseSize). */
  baseSizeGiven: boolean;
  loopDataSize: number;
  loopMetadataSize: number;
  /** undefined: xfs where the kernel has it, else ext4 (decided when the base device is made). */
  fs: FsType | undefined;
  mkfsArgs: string[];
  mountOptions: string[];
  thinPoolDevice: string | undefined;
  dataDevice: string | undefined;
  metadataDevice: string | undefined;
  blkDiscard: boolean;
  /** Pool block size in bytes. */
  blockSize: number;
  blockSizeGiven: boolean;
  deferredRemoval: boolean;
  deferredDeletion: boolean;
  minFreeSpacePercent: number;
  xfsNospaceMaxRetries: number | undefined;
  backend: BackendChoice;
  reflinkPoolDir: string | undefined;
}

function given(input: DriverOptionsInput | undefined | null, key: string): boolean {
  const matches = (k: string): boolean => {
    const lower = k.trim().toLowerCase();
    return lower === key || lower === `dm.${key}`;
  };
  if (input === undefined || input === null) return false;
  if (Array.isArray(input)) return input.some((o) => matches(String(o).split('=', 1)[0] ?? ''));
  return Object.entries(input).some(([k, v]) => v !== undefined && v !== null && matches(k));
}

/** Parses and resolves the driver's options (throws InvalidOptionError naming the key). */
export function resolveDmOptions(input: DriverOptionsInput | undefined | null): DmSettings {
  const o = dmOptions.parse(input);
  const thinPoolDevice = o.thinpooldev === undefined || o.thinpooldev.trim() === '' ? undefined : o.thinpooldev.trim().replace(/^\/dev\/mapper\//, '');
  const blkDiscardGiven = o.blkdiscard !== undefined;
  // Deletion follows removal unless given: turning removal off alone must not make the pair invalid.
  const deferredDeletion = given(input, 'use_deferred_deletion') ? o.use_deferred_deletion : o.use_deferred_removal;
  if (deferredDeletion && !o.use_deferred_removal) {
    throw new InvalidOptionError('dm.use_deferred_deletion', 'dm: deferred deletion can not be enabled as deferred removal is not enabled. Enable deferred removal using dm.use_deferred_removal=true');
  }
  return {
    baseSize: o.basesize,
    baseSizeGiven: given(input, 'basesize'),
    loopDataSize: o.loopdatasize,
    loopMetadataSize: o.loopmetadatasize,
    fs: o.fs,
    mkfsArgs: [...o.mkfsarg],
    mountOptions: [...o.mountopt],
    thinPoolDevice,
    dataDevice: o.datadev,
    metadataDevice: o.metadatadev,
    // moby: the discard is a workaround for loop files; on raw devices and user pools it is off unless asked for
    blkDiscard: blkDiscardGiven ? o.blkdiscard === true : o.datadev === undefined && thinPoolDevice === undefined,
    blockSize: o.blocksize,
    blockSizeGiven: given(input, 'blocksize'),
    deferredRemoval: o.use_deferred_removal,
    deferredDeletion,
    minFreeSpacePercent: parseMinFreeSpace(o.min_free_space),
    xfsNospaceMaxRetries: o.xfs_nospace_max_retries,
    backend: o.reflink_pooldir !== undefined && o.backend === 'auto' ? 'reflink' : o.backend,
    reflinkPoolDir: o.reflink_pooldir,
  };
}
