/**
 * Path order and path helpers of change lists. moby sorts changes with Go's string comparison,
 * which is the byte order of the UTF-8 encoding; JavaScript compares UTF-16 code units, which
 * differs for characters outside the BMP. Everything in changes/ that sorts uses compareBytewise.
 */
import type { Change, ChangeKind } from '../driver.js';

/** Map a UTF-16 code unit to a weight whose order is the UTF-8 byte order of the code points. */
function weight(unit: number): number {
  // Surrogates (astral code points) encode to 4 UTF-8 bytes starting 0xF0: above every BMP char.
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}

/** Compare two strings in the byte order of their UTF-8 encodings (Go's `<` on strings). */
export function compareBytewise(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return weight(x) - weight(y);
  }
  return a.length - b.length;
}

const KIND_ORDER: Record<ChangeKind, number> = { delete: 0, modify: 1, add: 2 };

/**
 * Sort changes by path as moby does (changesByPath). Equal paths (only possible in hand-made lists)
 * put a delete first, so that an export writes the whiteout before the entry that replaces it.
 */
export function sortChanges(changes: Change[]): Change[] {
  return changes.sort((x, y) => compareBytewise(x.path, y.path) || KIND_ORDER[x.kind] - KIND_ORDER[y.kind]);
}

/** `/a/b/c` -> `/a/b`; `/a` -> `/`. */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i <= 0 ? '/' : path.slice(0, i);
}

/** The last component of `/a/b/c`. */
export function baseOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Every directory between the root and `path`, excluding both: `/a/b/c` -> `/a`, `/a/b`. */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}
