/**
 * The errors only the command line has: a bad command line, an input that is not a usable image,
 * a blob or layer whose content does not match its digest, and a store file that cannot be read.
 * They extend core's GraphDriverError so that every failure the command prints has a stable `code`;
 * everything else (unknown layer, invalid option, invalid archive...) is core's own class.
 */
import { GraphDriverError, type GraphDriverErrorOptions } from '@graphdriver/core';

/** The command line itself is wrong: unknown command or option, a missing argument. Exit status 2. */
export class UsageError extends GraphDriverError {
  constructor(message: string, options?: GraphDriverErrorOptions) {
    super('ERR_GRAPHDRIVER_USAGE', message, options);
  }
}

/** The input is not a docker-save archive, an OCI archive or an OCI layout, or one of its parts is missing or malformed. */
export class InvalidImageError extends GraphDriverError {
  /** The file or directory given to import. */
  readonly source: string;
  constructor(source: string, message: string, options?: GraphDriverErrorOptions) {
    super('ERR_GRAPHDRIVER_INVALID_IMAGE', `${source}: ${message}`, options);
    this.source = source;
  }
}

/** Content whose digest (or size) is not the one its manifest, config or file name promises. */
export class DigestMismatchError extends GraphDriverError {
  readonly what: string;
  readonly expected: string;
  readonly actual: string;
  constructor(what: string, expected: string, actual: string) {
    super('ERR_GRAPHDRIVER_DIGEST_MISMATCH', `${what}: expected ${expected}, got ${actual}`);
    this.what = what;
    this.expected = expected;
    this.actual = actual;
  }
}

/** The command line's own store (image and layer records under the root) cannot be read or written. */
export class StoreError extends GraphDriverError {
  readonly file: string;
  constructor(file: string, message: string, options?: GraphDriverErrorOptions) {
    super('ERR_GRAPHDRIVER_STORE', `${file}: ${message}`, options);
    this.file = file;
  }
}
