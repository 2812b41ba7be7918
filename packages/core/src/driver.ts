/**
 * The graph driver contract: what every driver implements (ProtoDriver + DiffDriver) and the
 * optional capabilities some have, each detected with a type guard, never by driver name.
 * The shape follows containers/storage's drivers.Driver, made idiomatic for Node: async methods,
 * option objects, Node streams for tars.
 */
import type { Readable } from 'node:stream';

/** One contiguous range of an id mapping (as in /proc/self/uid_map). */
export interface IdMap {
  containerId: number;
  hostId: number;
  size: number;
}

export interface IdMappings {
  uidMap: IdMap[];
  gidMap: IdMap[];
}

export interface CreateOpts {
  mountLabel?: string;
  /** Driver-specific per-layer options, e.g. `{ size: '50M' }`. Unknown keys are errors. */
  storageOpt?: Record<string, string>;
  idMappings?: IdMappings;
}

export interface MountOpts {
  mountLabel?: string;
  /** Extra mount options for this mount only. */
  options?: string[];
  readOnly?: boolean;
  idMappings?: IdMappings;
}

export type ChangeKind = 'add' | 'modify' | 'delete';

/** One changed path of a layer; `path` is absolute within the layer (`/a/b`). */
export interface Change {
  path: string;
  kind: ChangeKind;
}

export interface DiffOpts {
  signal?: AbortSignal;
  mountLabel?: string;
  idMappings?: IdMappings;
}

export interface ApplyDiffOpts {
  signal?: AbortSignal;
  mountLabel?: string;
  /** Owners in the tar are container ids; they are mapped to host ids with these. */
  idMappings?: IdMappings;
  /** Keep going when chown fails (rootless, unmapped ids). */
  ignoreChownErrors?: boolean;
}

/** The part of a driver that stores layers and mounts them. */
export interface ProtoDriver {
  /** The driver's registered name (`vfs`, `overlay`...). */
  readonly name: string;
  /** The driver's home directory, `<root>/<name>`. */
  readonly home: string;
  /** Create a read-only (image) layer on `parent`. */
  create(id: string, parent?: string, opts?: CreateOpts): Promise<void>;
  /** Create a writable (container) layer on `parent`. */
  createReadWrite(id: string, parent?: string, opts?: CreateOpts): Promise<void>;
  /** Remove a layer. A layer that is still mounted is unmounted first or refused with LayerBusyError. */
  remove(id: string): Promise<void>;
  /** Mount (or otherwise make available) the layer's root filesystem and return its path. Ref-counted. */
  get(id: string, opts?: MountOpts): Promise<string>;
  /** Release one reference taken by get(); the last one unmounts. */
  put(id: string): Promise<void>;
  exists(id: string): Promise<boolean>;
  /** Human-readable rows, as `docker info` shows them. */
  status(): Promise<Array<[string, string]>>;
  /** Driver-specific facts about a layer (paths, device ids...). */
  metadata(id: string): Promise<Record<string, string>>;
  /** Unmount everything this driver mounted and release its resources. */
  cleanup(): Promise<void>;
}

/** The part of a driver that turns layers into tars and back. */
export interface DiffDriver {
  /** The layer's changes against `parent` as an uncompressed layer tar (AUFS whiteouts). */
  diff(id: string, parent?: string, opts?: DiffOpts): Promise<Readable>;
  changes(id: string, parent?: string, opts?: DiffOpts): Promise<Change[]>;
  /** Extract a layer tar into layer `id`; returns the sum of the entries' sizes. */
  applyDiff(id: string, parent: string | undefined, tar: Readable, opts?: ApplyDiffOpts): Promise<number>;
  /** The size of the layer's changes against `parent`, in bytes, as applyDiff would count them. */
  diffSize(id: string, parent?: string, opts?: DiffOpts): Promise<number>;
}

export interface Driver extends ProtoDriver, DiffDriver {}

// ---- optional capabilities -------------------------------------------------------------------

export interface CreateFromTemplateOpts {
  parent?: string;
  readWrite?: boolean;
  create?: CreateOpts;
  templateIdMappings?: IdMappings;
  parentIdMappings?: IdMappings;
}

/** Create a layer whose content is a copy of `template` (a layer that may have another parent). */
export interface TemplateDriver {
  createFromTemplate(id: string, template: string, opts?: CreateFromTemplateOpts): Promise<void>;
}

/** Reads single files of a layer's diff by their path in the tar. */
export interface FileGetter {
  get(path: string): Promise<Readable>;
  close(): Promise<void>;
}

export interface DiffGetterDriver {
  diffGetter(id: string): Promise<FileGetter>;
}

export interface DiskUsage {
  size: number;
  inodeCount: number;
}

export interface DiskUsageDriver {
  readWriteDiskUsage(id: string): Promise<DiskUsage>;
}

export interface ShiftingDriver {
  supportsShifting(): boolean;
  updateLayerIdMap(id: string, toContainer: IdMappings, toHost: IdMappings, mountLabel?: string): Promise<void>;
}

/** A diff extracted into a staging directory, not yet part of any layer. */
export interface StagedDiff {
  /** Opaque to the caller; pass back to commitStaged / cleanupStaging. */
  readonly stagingDir: string;
  readonly size: number;
}

export interface StagedApplyDriver {
  applyDiffToStaging(id: string, parent: string | undefined, tar: Readable, opts?: ApplyDiffOpts): Promise<StagedDiff>;
  commitStaged(id: string, staged: StagedDiff): Promise<void>;
  cleanupStaging(staged: StagedDiff): Promise<void>;
}

export interface AdditionalImageStoresDriver {
  additionalImageStores(): string[];
}

export interface ListLayersDriver {
  listLayers(): Promise<string[]>;
}

function hasMethods(d: object, ...names: string[]): boolean {
  return names.every((n) => typeof (d as Record<string, unknown>)[n] === 'function');
}

export const hasCreateFromTemplate = <D extends object>(d: D): d is D & TemplateDriver =>
  hasMethods(d, 'createFromTemplate');
export const hasDiffGetter = <D extends object>(d: D): d is D & DiffGetterDriver => hasMethods(d, 'diffGetter');
export const hasReadWriteDiskUsage = <D extends object>(d: D): d is D & DiskUsageDriver =>
  hasMethods(d, 'readWriteDiskUsage');
export const hasShifting = <D extends object>(d: D): d is D & ShiftingDriver =>
  hasMethods(d, 'supportsShifting', 'updateLayerIdMap');
export const hasStagedApply = <D extends object>(d: D): d is D & StagedApplyDriver =>
  hasMethods(d, 'applyDiffToStaging', 'commitStaged', 'cleanupStaging');
export const hasAdditionalImageStores = <D extends object>(d: D): d is D & AdditionalImageStoresDriver =>
  hasMethods(d, 'additionalImageStores');
export const hasListLayers = <D extends object>(d: D): d is D & ListLayersDriver => hasMethods(d, 'listLayers');

/** How a driver is made: the registry calls this with the driver's home and its parsed options. */
export interface DriverInitContext {
  /** `<root>/<name>`; the driver creates it if needed. */
  home: string;
  /** The store root that holds every driver's home. */
  root: string;
  /** Options for this driver, still raw: each driver parses and validates its own. */
  options: DriverOptionsInput;
  /** Id mappings of the whole store, if any. */
  idMappings?: IdMappings;
}

/** Options as users give them: moby-style strings (`overlay.mountopt=nodev`) or an object. */
export type DriverOptionsInput = string[] | Record<string, string | number | boolean>;

export type DriverInit = (ctx: DriverInitContext) => Promise<Driver>;
