/**
 * Mount options as users write them (`dm.mountopt=nodiscard,noatime`, MountOpts.options) split the
 * way moby's mount.ParseOptions splits them: mount(2) flag words (`ro`, `nodev`, `noatime`...) and
 * filesystem data (`nouuid`, `discard`, `context="..."`), in order, later words winning.
 */
import { InvalidOptionError } from '@graphdriver/core';
import { MS } from '@graphdriver/native';

export interface ParsedMountOptions {
  flags: number;
  data: string[];
}

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

/** Words that would make a layer mount something else than a mount of its device. */
const REFUSED = new Set(['bind', 'rbind', 'remount', 'move', 'private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave', 'unbindable', 'runbindable']);

/** Splits comma-separated lists (in order) into flags and data; data keys given twice keep the last. */
export function parseMountOptions(...lists: ReadonlyArray<string | readonly string[] | undefined>): ParsedMountOptions {
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
      if (REFUSED.has(key)) throw new InvalidOptionError('mountopt', `devmapper: the mount option ${JSON.stringify(word)} cannot be used for a layer mount`);
      const i = data.findIndex((d) => d.split('=', 1)[0] === key);
      if (i >= 0) data.splice(i, 1);
      data.push(word);
    }
  }
  return { flags, data };
}
