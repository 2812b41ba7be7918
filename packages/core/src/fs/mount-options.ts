/**
 * Mount options as users write them (`overlay.mountopt=nodev,metacopy=on`, `dm.mountopt=nouuid`,
 * MountOpts.options), split the way moby's mount.ParseOptions splits them: mount(2) flag words
 * (`ro`, `nodev`, `noatime`...) and filesystem data (`metacopy=on`, `discard`, `context="..."`), in
 * order, later words winning. The new mount API needs the same flags in a third shape (per-mount
 * attributes for fsmount, superblock flags for fsconfig): mountAttrsOf.
 */
import { MOUNT_ATTR, MS } from '@graphdriver/native';
import { InvalidOptionError } from '../errors.js';

export interface ParsedMountOptions {
  /** mount(2) flags (MS.*). */
  flags: number;
  /** Filesystem options, in order; a key given twice keeps its last value. */
  data: string[];
}

/** What a driver forbids besides the words that would make a layer mount something else. */
export interface MountOptionRules {
  /** The driver's name, for error messages. */
  driver: string;
  /** Data keys the driver sets itself (overlay's lowerdir, upperdir...), refused from users. */
  driverKeys?: ReadonlySet<string>;
  /** Why a driver key is refused, the end of the error message. */
  driverKeysReason?: string;
}

/** Flag words: [set, clear] as mount(8) and moby's mount package read them. */
const FLAG_WORDS: Readonly<Record<string, readonly [set: number, clear: number]>> = {
  defaults: [0, 0],
  ro: [MS.RDONLY, 0],
  rw: [0, MS.RDONLY],
  nosuid: [MS.NOSUID, 0],
  suid: [0, MS.NOSUID],
  nodev: [MS.NODEV, 0],
  dev: [0, MS.NODEV],
  noexec: [MS.NOEXEC, 0],
  exec: [0, MS.NOEXEC],
  sync: [MS.SYNCHRONOUS, 0],
  async: [0, MS.SYNCHRONOUS],
  dirsync: [MS.DIRSYNC, 0],
  mand: [MS.MANDLOCK, 0],
  nomand: [0, MS.MANDLOCK],
  noatime: [MS.NOATIME, 0],
  atime: [0, MS.NOATIME],
  nodiratime: [MS.NODIRATIME, 0],
  diratime: [0, MS.NODIRATIME],
  relatime: [MS.RELATIME, 0],
  norelatime: [0, MS.RELATIME],
  strictatime: [MS.STRICTATIME, 0],
  nostrictatime: [0, MS.STRICTATIME],
  lazytime: [MS.LAZYTIME, 0],
  nolazytime: [0, MS.LAZYTIME],
};

/** Words that would make a layer mount a bind, a move or a propagation change instead. */
const REFUSED_WORDS = new Set(['bind', 'rbind', 'remount', 'move', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable']);

/** Splits comma-separated option lists (several sources, in order; later words win) into flags and data. */
export function parseMountOptions(rules: MountOptionRules, ...lists: ReadonlyArray<string | readonly string[] | undefined>): ParsedMountOptions {
  let flags = 0;
  const data: string[] = [];
  for (const list of lists) {
    if (list === undefined) continue;
    const words = typeof list === 'string' ? list.split(',') : list.flatMap((o) => o.split(','));
    for (const raw of words) {
      const word = raw.trim();
      if (word === '') continue;
      const flag = FLAG_WORDS[word];
      if (flag !== undefined) {
        flags = (flags | flag[0]) & ~flag[1];
        continue;
      }
      const key = word.split('=', 1)[0]!;
      if (rules.driverKeys?.has(key) === true) {
        throw new InvalidOptionError('mountopt', `${rules.driver}: the mount option ${JSON.stringify(word)} ${rules.driverKeysReason ?? 'is set by the driver'}`);
      }
      if (REFUSED_WORDS.has(key)) throw new InvalidOptionError('mountopt', `${rules.driver}: the mount option ${JSON.stringify(word)} cannot be used for a layer mount`);
      // metacopy=on and friends: the last one given wins, as the kernel would read them
      const i = data.findIndex((d) => d.split('=', 1)[0] === key);
      if (i >= 0) data.splice(i, 1);
      data.push(word);
    }
  }
  return { flags, data };
}

/** The flag words of `flags` again, for mount programs and mount(8), which take one `-o` string. */
export function flagWords(flags: number): string[] {
  const out: string[] = [];
  for (const [word, [set]] of Object.entries(FLAG_WORDS)) {
    if (set !== 0 && (flags & set) === set) out.push(word);
  }
  return out;
}

/** What the new mount API needs: per-mount attributes for fsmount and superblock flags for fsconfig. */
export function mountAttrsOf(flags: number): { attrs: number; sbFlags: string[] } {
  let attrs = 0;
  const sbFlags: string[] = [];
  if (flags & MS.RDONLY) attrs |= MOUNT_ATTR.RDONLY;
  if (flags & MS.NOSUID) attrs |= MOUNT_ATTR.NOSUID;
  if (flags & MS.NODEV) attrs |= MOUNT_ATTR.NODEV;
  if (flags & MS.NOEXEC) attrs |= MOUNT_ATTR.NOEXEC;
  if (flags & MS.NODIRATIME) attrs |= MOUNT_ATTR.NODIRATIME;
  // the atime modes are one field: noatime beats strictatime beats relatime (the default)
  if (flags & MS.NOATIME) attrs |= MOUNT_ATTR.NOATIME;
  else if (flags & MS.STRICTATIME) attrs |= MOUNT_ATTR.STRICTATIME;
  if (flags & MS.SYNCHRONOUS) sbFlags.push('sync');
  if (flags & MS.DIRSYNC) sbFlags.push('dirsync');
  if (flags & MS.MANDLOCK) sbFlags.push('mand');
  if (flags & MS.LAZYTIME) sbFlags.push('lazytime');
  return { attrs, sbFlags };
}
