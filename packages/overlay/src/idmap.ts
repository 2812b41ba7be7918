/**
 * Idmapped lower layers (Linux 5.12+ mount_setattr MOUNT_ATTR_IDMAP, overlay on idmapped layers
 * 5.19+), as containers/storage uses them for `supportsShifting`: the layers stay on disk with
 * container ids, and a mount that shows them shifted to host ids is made from a detached clone of
 * the store's home (open_tree OPEN_TREE_CLONE) with a user namespace's mapping attached; overlay
 * takes its lowers through that clone (`/proc/self/fd/<clone>/l/<name>`), so no mount point is
 * needed for it and nothing is left to clean up once the overlay is mounted.
 *
 * A user namespace with a given mapping is made by starting `unshare --user` (util-linux), writing
 * its uid_map and gid_map from here (we are root in the parent namespace) and keeping an fd of its
 * namespace; the process is then ended: the fd keeps the namespace. One namespace per mapping is
 * cached until cleanup().
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { AT, MOUNT_ATTR, OPEN_TREE, mountSetattr, openTree } from '@graphdriver/native';
import { OperationFailedError, type IdMap, type IdMappings } from '@graphdriver/core';

/** The text of /proc/<pid>/uid_map for `maps`: `container host size` lines. */
export function idMapText(maps: readonly IdMap[]): string {
  return maps.map((m) => `${m.containerId} ${m.hostId} ${m.size}\n`).join('');
}

/** A key that is equal for equal mappings. */
export function mappingKey(m: IdMappings): string {
  return `${idMapText(m.uidMap)}|${idMapText(m.gidMap)}`;
}

/** A new user namespace with `mappings`; resolves with an fd of it (O_RDONLY|O_CLOEXEC). */
export async function createUserNamespace(mappings: IdMappings): Promise<number> {
  const ours = readlinkSync('/proc/self/ns/user');
  const child = spawn('unshare', ['--user', 'sleep', 'infinity'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  void exited.then(() => (gone = true));
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const pid = child.pid!;
    // unshare(CLONE_NEWUSER) happens after the fork: wait until the child is in a namespace of its own
    for (let i = 0; ; i++) {
      if (gone) throw new Error('unshare --user exited before entering a new user namespace');
      let ns: string | undefined;
      try {
        ns = readlinkSync(`/proc/${pid}/ns/user`);
      } catch {
        ns = undefined;
      }
      if (ns !== undefined && ns !== ours) break;
      if (i > 2000) throw new Error('unshare --user did not enter a new user namespace within 2 s');
      await sleep(1);
    }
    await writeFile(`/proc/${pid}/uid_map`, idMapText(mappings.uidMap));
    await writeFile(`/proc/${pid}/gid_map`, idMapText(mappings.gidMap));
    return openSync(`/proc/${pid}/ns/user`, 'r');
  } catch (err) {
    throw new OperationFailedError('making a user namespace for an idmapped mount', undefined, err);
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

/** A detached clone of `dir` whose ids are shown through the namespace `usernsFd`; close the fd when done. */
export async function idmappedClone(dir: string, usernsFd: number): Promise<number> {
  const tree = await openTree(AT.FDCWD, dir, OPEN_TREE.CLONE | OPEN_TREE.CLOEXEC);
  try {
    await mountSetattr(tree, '', AT.EMPTY_PATH, { attrSet: MOUNT_ATTR.IDMAP, usernsFd });
  } catch (err) {
    closeSync(tree);
    throw err;
  }
  return tree;
}

/** User namespaces by mapping, made once and kept until closeAll(). */
export class UserNamespaces {
  readonly #fds = new Map<string, Promise<number>>();

  fdFor(mappings: IdMappings): Promise<number> {
    const key = mappingKey(mappings);
    let fd = this.#fds.get(key);
    if (fd === undefined) {
      fd = createUserNamespace(mappings);
      this.#fds.set(key, fd);
      fd.catch(() => this.#fds.delete(key));
    }
    return fd;
  }

  async closeAll(): Promise<void> {
    const fds = [...this.#fds.values()];
    this.#fds.clear();
    for (const p of fds) {
      const fd = await p.catch(() => undefined);
      if (fd !== undefined) closeSync(fd);
    }
  }
}

/** The host id container id `id` maps to, or undefined when `maps` do not map it. */
export function toHost(maps: readonly IdMap[], id: number): number | undefined {
  for (const m of maps) if (id >= m.containerId && id < m.containerId + m.size) return m.hostId + (id - m.containerId);
  return undefined;
}

/** The container id host id `id` maps to, or undefined when `maps` do not map it. */
export function toContainer(maps: readonly IdMap[], id: number): number | undefined {
  for (const m of maps) if (id >= m.hostId && id < m.hostId + m.size) return m.containerId + (id - m.hostId);
  return undefined;
}

/** Whether each of `maps` continues the previous one (fuse-overlayfs takes only such mappings). */
export function isContiguous(maps: readonly IdMap[]): boolean {
  for (let i = 1; i < maps.length; i++) {
    const p = maps[i - 1]!;
    const m = maps[i]!;
    if (m.containerId !== p.containerId + p.size || m.hostId !== p.hostId + p.size) return false;
  }
  return true;
}
