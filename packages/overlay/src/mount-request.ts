/**
 * One overlay mount as the driver asks for it, whatever makes it (the new mount API, mount(2), a
 * FUSE program): the target, the lower directories nearest first, the upper and work directories
 * of a writable mount, the parsed options, and the SELinux label.
 */
import type { ParsedMountOptions } from './mount-options.js';

export interface OverlayMount {
  /** The mount point (`<id>/merged`). */
  target: string;
  /** Lower directories as the kernel resolves them (short links allowed), nearest first. */
  lowers: readonly string[];
  /** The upper and work directories of a writable mount; absent for a read-only one. */
  upper?: { dir: string; work: string };
  options: ParsedMountOptions;
  /** Options the driver adds (`index=off`), before the user's. */
  driverData: readonly string[];
  /** The SELinux context of the mount (`context="..."`). */
  label?: string;
  /** uid/gid mappings for a mount program (`uidmapping=0:100000:65536`). */
  programMappings?: readonly string[];
}

/** What made a mount: shown in status() and returned by get()'s debug log. */
export type MountMethod = 'new-api' | 'mount(2)' | 'mount(2) fd paths' | 'mount(8) helper' | 'mount program' | 'bind';

/** A path that may stand in the comma- and colon-separated data of mount(2) without escaping. */
export function isPlainPath(path: string): boolean {
  return !/[,:\\\n]/.test(path);
}
