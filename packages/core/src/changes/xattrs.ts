/**
 * The extended attributes change detection reads: the ones a change of which is a change of the
 * file (security.capability as moby compares it, user.* as containers/storage also does), and
 * overlayfs' opaque marker. Read through the native addon: Node has no xattr API.
 */
import { lgetxattrSync, llistxattrSync } from '@graphdriver/native';
import { errorCode } from '../errors.js';

/** A filesystem without xattr support, or an entry that vanished meanwhile: no attributes. */
function isAbsent(err: unknown): boolean {
  const code = errorCode(err);
  return code === 'ENODATA' || code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOENT' || code === 'ENOTDIR';
}

const isCompared = (name: string): boolean => name === 'security.capability' || name.startsWith('user.');

/** The compared xattrs of `path` (not following a symlink), by name. Empty when there are none. */
export function readComparedXattrs(path: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let names: string[];
  try {
    names = llistxattrSync(path);
  } catch (err) {
    if (isAbsent(err)) return out;
    throw err;
  }
  for (const name of names) {
    if (!isCompared(name)) continue;
    try {
      out.set(name, lgetxattrSync(path, name));
    } catch (err) {
      if (!isAbsent(err)) throw err;
    }
  }
  return out;
}

export function sameXattrs(a: Map<string, Buffer>, b: Map<string, Buffer>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, value] of a) {
    const other = b.get(name);
    if (other === undefined || !other.equals(value)) return false;
  }
  return true;
}

/** True when the directory carries `<prefix>.overlay.opaque` = `y` (the only value meaning opaque). */
export function isOverlayOpaque(path: string, prefix: 'trusted' | 'user'): boolean {
  try {
    const value = lgetxattrSync(path, `${prefix}.overlay.opaque`);
    return value.length === 1 && value[0] === 0x79; // 'y'; 'x' (6.7+) only flags xwhiteouts inside
  } catch (err) {
    if (isAbsent(err)) return false;
    throw err;
  }
}
