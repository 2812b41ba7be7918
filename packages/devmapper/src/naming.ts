/**
 * Names, as moby's DeviceSet makes them: the device prefix `docker-<major>:<minor>-<inode>` of the
 * driver's home (so two stores on one host never share device names), the pool `<prefix>-pool`,
 * the base device `<prefix>-base` and each layer's device `<prefix>-<id>`; the metadata file of a
 * device is named after its id, `base` for the base device.
 *
 * Two things moby never met, because its ids are 64 hex digits: a layer may be called `base` (or
 * `deviceset-metadata`, or end in `.migrated`), which would be the base device's files and name, and
 * an id of up to 128 characters does not fit in a device-mapper name (127 bytes). Such ids are
 * escaped with a leading `_`, which no layer id can start with; a name that is still too long ends
 * in a digest of the id instead of the id.
 */
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';

/** A device-mapper name holds at most 127 bytes (DM_NAME_LEN - 1). */
const DM_NAME_MAX = 127;

/** moby's metadata files that are not devices. */
export const DEVICE_SET_META_FILE = 'deviceset-metadata';
export const TRANSACTION_META_FILE = 'transaction-metadata';

const RESERVED = new Set(['base', DEVICE_SET_META_FILE, TRANSACTION_META_FILE]);

/** The key of a device in file and device names: `base` for the base device (hash ''), the id otherwise, escaped where it would clash. */
export function deviceKey(hash: string): string {
  if (hash === '') return 'base';
  if (RESERVED.has(hash) || hash.endsWith('.migrated')) return `_${hash}`;
  return hash;
}

/** The hash (layer id, '' for the base) of a metadata file name, or undefined for files that are not devices. */
export function hashOfMetadataFile(name: string): string | undefined {
  // escaped names first: `_x.migrated` is the layer x.migrated, not moby's migrated json
  if (name.startsWith('_')) return name.slice(1);
  if (name.startsWith('.') || name.endsWith('.migrated')) return undefined;
  if (name === DEVICE_SET_META_FILE || name === TRANSACTION_META_FILE) return undefined;
  if (name === 'base') return '';
  return name;
}

/** `docker-<major>:<minor>-<inode>` of `home` (moby's devicePrefix). */
export async function devicePrefix(home: string): Promise<string> {
  const st = await stat(home, { bigint: true });
  const dev = st.dev;
  const major = Number((dev >> 8n) & 0xfffn);
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & 0xfff00n));
  return `docker-${major}:${minor}-${st.ino}`;
}

/** The device-mapper name of a device: `<prefix>-<key>`, or a digest of the id where that is too long. */
export function deviceName(prefix: string, hash: string): string {
  const name = `${prefix}-${deviceKey(hash)}`;
  if (Buffer.byteLength(name) <= DM_NAME_MAX) return name;
  return `${prefix}-sha256-${createHash('sha256').update(hash).digest('hex')}`;
}

export function poolName(prefix: string): string {
  return `${prefix}-pool`;
}
