/**
 * The volume driver contract: what layer0 asks of the storage its container layers live on. Shaped
 * after openstorage's volume API (volume/volume.go: ProtoDriver, BlockDriver, Enumerator; api.go:
 * VolumeLocator, VolumeSpec, Volume), made idiomatic for Node: async methods, option objects,
 * AbortSignal on the slow ones. A volume is made once (create), found again by name or labels
 * (enumerate, inspect), made available on this host (attach for block drivers, then mount at a
 * directory), released (unmount, detach) and finally deleted.
 *
 * Built-in drivers: `loopback` (loopback.ts) and `dir` (dir.ts). Others plug in by name through
 * volume-registry.ts.
 */

/** How a driver's volumes reach the host: block devices to attach and mount, or filesystems to mount. */
export type VolumeDriverType = 'block' | 'file';

/** A volume's name and labels (openstorage's VolumeLocator). */
export interface VolumeLocator {
  /** Unique per driver: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 200 characters (see validateVolumeName). */
  name: string;
  labels: Readonly<Record<string, string>>;
}

/** What a volume is made with (openstorage's VolumeSpec, the parts layer0 uses). */
export interface VolumeSpec {
  /** Size limit in bytes; a driver without limits refuses one (QuotaNotSupportedError). */
  size?: number;
  /** Filesystem made on a block volume (`ext4`, `xfs`); the driver's default when not given. */
  format?: string;
}

/** A volume as a driver reports it (openstorage's api.Volume, the parts layer0 uses). */
export interface Volume {
  /** Driver-wide unique id, what every other call takes. The built-in drivers use the name. */
  readonly id: string;
  readonly locator: VolumeLocator;
  /** The size limit in bytes (undefined: none) and the filesystem of a block volume. */
  readonly spec: Readonly<VolumeSpec>;
  /** The block device while attached on this host (`/dev/loop3`); undefined when detached or not a block volume. */
  readonly devicePath: string | undefined;
  /** The directories it is mounted at on this host (openstorage's AttachPath). Empty when not mounted. */
  readonly attachPath: readonly string[];
  /** When the volume was created. */
  readonly ctime: Date;
}

/** A filter for enumerate(): the name must be equal, every label given must be present with that value. */
export interface VolumeQuery {
  name?: string;
  labels?: Readonly<Record<string, string>>;
}

export interface VolumeCallOptions {
  signal?: AbortSignal;
}

/**
 * A volume driver. Errors are graphdriver's typed errors: an unknown volume id is a
 * LayerUnknownError (`what` = 'volume'), a volume in use a LayerBusyError, a limit the driver cannot
 * enforce a QuotaNotSupportedError, a failing system call an OperationFailedError with the native
 * error as cause.
 */
export interface VolumeDriver {
  /** The name it is registered under (`loopback`, `dir`...). */
  readonly name: string;
  readonly type: VolumeDriverType;
  /**
   * Whether volumes can be made with a size limit. `false` lets layer0 refuse `layer0.volume_size`
   * at start (as moby refuses a default size it cannot enforce); left out, create() decides.
   */
  readonly limitsSize?: boolean;
  /** Makes a new volume; resolves with its id. A name that exists is an error. */
  create(locator: { name: string; labels?: Readonly<Record<string, string>> }, spec: VolumeSpec, opts?: VolumeCallOptions): Promise<string>;
  /** The volumes of these ids that exist (missing ids are left out, as openstorage's Inspect does). */
  inspect(ids: readonly string[], opts?: VolumeCallOptions): Promise<Volume[]>;
  /** Every volume matching `query` (all of them without one). */
  enumerate(query?: VolumeQuery, opts?: VolumeCallOptions): Promise<Volume[]>;
  /** Makes a block volume's device available on this host; resolves with its path. File drivers resolve with a path to mount from. */
  attach(id: string, opts?: VolumeCallOptions): Promise<string>;
  /** Releases what attach() took. A volume still mounted is a LayerBusyError. */
  detach(id: string, opts?: VolumeCallOptions): Promise<void>;
  /** Mounts the volume's filesystem at `mountPath` (an existing directory). */
  mount(id: string, mountPath: string, opts?: VolumeCallOptions): Promise<void>;
  /** Unmounts it from `mountPath`; not mounted there is not an error. */
  unmount(id: string, mountPath: string, opts?: VolumeCallOptions): Promise<void>;
  /** Deletes the volume and its data. An attached or mounted volume is a LayerBusyError. */
  delete(id: string, opts?: VolumeCallOptions): Promise<void>;
  /** Rows for layer0's status(). */
  status?(): Promise<Array<[string, string]>>;
  /** Releases what the driver holds on this host that no volume mount needs any more (layer0's cleanup). */
  shutdown?(): Promise<void>;
}

/** What a volume driver factory is given. */
export interface VolumeDriverContext {
  /** The name the driver was asked for under. */
  name: string;
  /** A directory of the driver's own, `<layer0 home>/volumes/<name>` (created before the factory runs). */
  home: string;
  /** `layer0.volume_opt` entries (`key=value`), for the driver to validate: an unknown key is an InvalidOptionError. */
  options: Readonly<Record<string, string>>;
}

export type VolumeDriverFactory = (ctx: VolumeDriverContext) => VolumeDriver | Promise<VolumeDriver>;
