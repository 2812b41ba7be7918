/**
 * The typed errors of graphdriver. Every error a caller may want to tell apart has its own class
 * and a stable `code`; the message is for people. "Not supported" errors share `isNotSupported()`,
 * which driver selection and graphtest use to skip a driver or a case.
 */

export interface GraphDriverErrorOptions {
  cause?: unknown;
}

/** Base class of every error graphdriver throws on purpose. */
export class GraphDriverError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: GraphDriverErrorOptions) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }

  override get name(): string {
    return this.constructor.name;
  }
}

/** The driver (or a feature of it) cannot work on this host. */
export class NotSupportedError extends GraphDriverError {
  constructor(message: string, options?: GraphDriverErrorOptions & { code?: string }) {
    super(options?.code ?? 'ERR_GRAPHDRIVER_NOT_SUPPORTED', message, options);
  }
}

/** A tool, kernel feature or module the driver needs is missing. */
export class PrerequisitesError extends NotSupportedError {
  constructor(message: string, options?: GraphDriverErrorOptions) {
    super(message, { ...options, code: 'ERR_GRAPHDRIVER_PREREQUISITES' });
  }
}

/** The backing filesystem cannot hold this driver's layers (overlay on overlay, no d_type...). */
export class IncompatibleFsError extends NotSupportedError {
  readonly backingFs: string;
  constructor(message: string, backingFs: string, options?: GraphDriverErrorOptions) {
    super(message, { ...options, code: 'ERR_GRAPHDRIVER_INCOMPATIBLE_FS' });
    this.backingFs = backingFs;
  }
}

/** Size limits were asked for where the backing filesystem has no project quota. */
export class QuotaNotSupportedError extends NotSupportedError {
  constructor(message: string, options?: GraphDriverErrorOptions) {
    super(message, { ...options, code: 'ERR_GRAPHDRIVER_QUOTA_NOT_SUPPORTED' });
  }
}

/** True for every "this cannot work here" error, whatever the class that made it. */
export function isNotSupported(err: unknown): boolean {
  return err instanceof NotSupportedError;
}

/** A layer id that is not `[A-Za-z0-9][A-Za-z0-9_.-]*` of at most 128 characters. */
export class InvalidLayerIdError extends GraphDriverError {
  readonly id: unknown;
  constructor(id: unknown, reason: string) {
    super('ERR_GRAPHDRIVER_INVALID_LAYER_ID', `invalid layer id ${JSON.stringify(id)}: ${reason}`);
    this.id = id;
  }
}

export class LayerUnknownError extends GraphDriverError {
  readonly id: string;
  constructor(id: string, what = 'layer', options?: GraphDriverErrorOptions) {
    super('ERR_GRAPHDRIVER_LAYER_UNKNOWN', `${what} ${JSON.stringify(id)} does not exist`, options);
    this.id = id;
  }
}

export class LayerExistsError extends GraphDriverError {
  readonly id: string;
  constructor(id: string, options?: GraphDriverErrorOptions) {
    super('ERR_GRAPHDRIVER_LAYER_EXISTS', `layer ${JSON.stringify(id)} already exists`, options);
    this.id = id;
  }
}

export class LayerBusyError extends GraphDriverError {
  readonly id: string;
  constructor(id: string, why: string, options?: GraphDriverErrorOptions) {
    super('ERR_GRAPHDRIVER_LAYER_BUSY', `layer ${JSON.stringify(id)} is busy: ${why}`, options);
    this.id = id;
  }
}

/** An option key the driver does not know, or a value it cannot take. */
export class InvalidOptionError extends GraphDriverError {
  readonly key: string;
  constructor(key: string, message: string, options?: GraphDriverErrorOptions) {
    super('ERR_GRAPHDRIVER_INVALID_OPTION', message, options);
    this.key = key;
  }
}

/** A tar that is not a tar, is truncated or corrupt, or has an entry we refuse (a device where none are allowed). */
export class InvalidArchiveError extends GraphDriverError {
  readonly entry: string | undefined;
  constructor(message: string, entry?: string, options?: GraphDriverErrorOptions) {
    super('ERR_GRAPHDRIVER_INVALID_ARCHIVE', entry === undefined ? message : `${message} (entry ${JSON.stringify(entry)})`, options);
    this.entry = entry;
  }
}

/** A tar entry that would create, change or follow something outside the directory it is unpacked in. */
export class ArchiveBreakoutError extends GraphDriverError {
  readonly entry: string;
  constructor(entry: string, why: string, options?: GraphDriverErrorOptions) {
    super('ERR_GRAPHDRIVER_ARCHIVE_BREAKOUT', `refusing tar entry ${JSON.stringify(entry)}: ${why}`, options);
    this.entry = entry;
  }
}

/** A stack of layers deeper than the driver (or the kernel) can mount. */
export class MaxDepthError extends GraphDriverError {
  readonly depth: number;
  readonly limit: number;
  constructor(depth: number, limit: number, what = 'layer stack') {
    super('ERR_GRAPHDRIVER_MAX_DEPTH', `${what} is ${depth} layers deep; the limit is ${limit}`);
    this.depth = depth;
    this.limit = limit;
  }
}

/** Two drivers both have state under one root: the caller must choose. */
export class DriverConflictError extends GraphDriverError {
  readonly drivers: string[];
  constructor(root: string, drivers: string[]) {
    super(
      'ERR_GRAPHDRIVER_CONFLICT',
      `${root} contains state of more than one driver (${drivers.join(', ')}); choose one explicitly`,
    );
    this.drivers = drivers;
  }
}

/**
 * A step of a driver operation failed; `cause` is the underlying error (usually a native one with
 * `code`, `errno`, `syscall`, `path`). The message says what we were doing and to which layer.
 */
export class OperationFailedError extends GraphDriverError {
  readonly operation: string;
  readonly layer: string | undefined;
  constructor(operation: string, layer: string | undefined, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(
      'ERR_GRAPHDRIVER_OPERATION_FAILED',
      `${operation}${layer === undefined ? '' : ` of layer ${JSON.stringify(layer)}`} failed: ${detail}`,
      { cause },
    );
    this.operation = operation;
    this.layer = layer;
  }
}

/** The `code` of an error-like value (`'ENOENT'`, `'ERR_GRAPHDRIVER_...'`), if it has one. */
export function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
