/**
 * Re-owning a tree from one id mapping to another (containers/storage's ChownPathByMaps, the core
 * of updateLayerIdMap): each entry's owner, a host id under the old mapping, is read back to its
 * container id with `toContainer` and mapped to a host id again with `toHost`. chown clears the
 * setuid/setgid bits of files, so the mode is put back afterwards. An owner the old mapping does
 * not cover is an error naming the file.
 */
import { readdir } from 'node:fs/promises';
import { AT, S, fchmodatSync, fchownatSync, fstatatSync } from '@graphdriver/native';
import { OperationFailedError, type IdMappings } from '@graphdriver/core';
import { toContainer as containerIdOf, toHost as hostIdOf } from './idmap.js';

function remap(id: number, from: IdMappings['uidMap'], to: IdMappings['uidMap'], path: string, kind: string): number {
  const container = from.length === 0 ? id : containerIdOf(from, id);
  if (container === undefined) throw new OperationFailedError('re-owning', undefined, new Error(`${path}: ${kind} ${id} is not mapped by the old mapping`));
  const host = to.length === 0 ? container : hostIdOf(to, container);
  if (host === undefined) throw new OperationFailedError('re-owning', undefined, new Error(`${path}: container ${kind} ${container} is not mapped by the new mapping`));
  return host;
}

export async function chownByMaps(root: string, toContainer: IdMappings, toHost: IdMappings, signal?: AbortSignal): Promise<void> {
  const one = (path: string): number => {
    const st = fstatatSync(AT.FDCWD, path, AT.SYMLINK_NOFOLLOW);
    const uid = remap(st.uid, toContainer.uidMap, toHost.uidMap, path, 'uid');
    const gid = remap(st.gid, toContainer.gidMap, toHost.gidMap, path, 'gid');
    const type = st.mode & S.IFMT;
    if (uid !== st.uid || gid !== st.gid) {
      fchownatSync(AT.FDCWD, path, uid, gid, AT.SYMLINK_NOFOLLOW);
      if (type !== S.IFLNK && (st.mode & (S.ISUID | S.ISGID)) !== 0) fchmodatSync(AT.FDCWD, path, st.mode & 0o7777, 0);
    }
    return type;
  };
  one(root);
  const stack = [root];
  while (stack.length > 0) {
    signal?.throwIfAborted();
    const dir = stack.pop()!;
    for (const name of await readdir(dir)) {
      const p = `${dir}/${name}`;
      if (one(p) === S.IFDIR) stack.push(p);
    }
  }
}
