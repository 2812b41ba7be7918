/**
 * What a conformance case gets: a driver made by the caller's factory on a fresh root, a scratch
 * directory outside the store, the declared capabilities, and a way to restart the driver on the
 * same root. Also the factory and capability types of the public API.
 */
import type { Driver } from '@graphdriver/core';

/** Makes a driver on `root` (a fresh, empty directory, or the same root again for a restart). */
export type DriverFactory = (root: string) => Promise<Driver>;

/**
 * What the driver declares about itself where the contract leaves a choice. Optional methods not
 * declared are detected with core's type guards: a missing one is a skip that says so; declared
 * `true` and missing is a failure; declared `false` skips the case even when present.
 */
export interface Capabilities {
  /**
   * Mode of the root directory of a layer created without a parent. Default 0o555, as
   * containers/storage's drivers make it; moby's drivers make 0o755.
   */
  rootMode?: number;
  /** The driver keeps `trusted.*` xattrs of layer content (overlay reserves some). Default true. */
  trustedXattrs?: boolean;
  /** The driver stores char and block device nodes. Default true. */
  devices?: boolean;
  createFromTemplate?: boolean;
  listLayers?: boolean;
}

export interface ResolvedCapabilities {
  rootMode: number;
  trustedXattrs: boolean;
  devices: boolean;
  createFromTemplate: boolean | undefined;
  listLayers: boolean | undefined;
}

export interface CaseContext {
  /** The driver under test; replaced by restart(). */
  readonly driver: Driver;
  /** The root the factory was given. */
  readonly root: string;
  /** A directory of the case's own, outside the store (the "outside" malicious tars aim at). */
  readonly scratch: string;
  readonly capabilities: ResolvedCapabilities;
  /** True when the caller said quotas must work here (a quotaRoot was given). */
  readonly quotaRequired: boolean;
  readonly signal: AbortSignal;
  /** cleanup() of the current driver, then a new one from the factory on the same root. */
  restart(): Promise<Driver>;
  /** cleanup() of the current driver now; the runner will not call it again. */
  cleanupDriver(): Promise<void>;
}
