/**
 * overlay's reading of mount options: core's split into mount(2) flags and filesystem data, with
 * the options that name the layers themselves (lowerdir, upperdir...) kept the driver's, never the
 * user's, and `ro` read as "mount without the upper dir".
 */
import { parseMountOptions as parseWithRules, type ParsedMountOptions as CoreParsedMountOptions } from '@graphdriver/core';
import { MS } from '@graphdriver/native';

export interface ParsedMountOptions extends CoreParsedMountOptions {
  /** `ro` was given: the layer is mounted without its upper dir. */
  readOnly: boolean;
}

/** Options the driver sets itself from the layer's layout. */
const DRIVER_KEYS = new Set(['lowerdir', 'lowerdir+', 'upperdir', 'workdir', 'datadir+']);

/** Splits comma-separated option lists (several sources, in order; later words win) into flags and data. */
export function parseMountOptions(...lists: ReadonlyArray<string | readonly string[] | undefined>): ParsedMountOptions {
  const { flags, data } = parseWithRules({ driver: 'overlay', driverKeys: DRIVER_KEYS, driverKeysReason: "is set by the driver from the layer's lowers" }, ...lists);
  return { flags, data, readOnly: (flags & MS.RDONLY) !== 0 };
}
