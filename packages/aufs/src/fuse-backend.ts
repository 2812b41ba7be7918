/**
 * fuse-overlayfs as the mount backend where the kernel has no aufs (every mainline kernel): it
 * honours AUFS whiteouts (`.wh.<name>`, `.wh..wh..opq`) in its lower branches, and it is run so that
 * it writes them into its upper branch too, which therefore stays an AUFS branch on disk:
 *
 *  - FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT=1: as root it would mknod a 0/0 character device for each
 *    deletion (overlayfs's format); with it, it writes an empty `.wh.<name>` file instead (measured
 *    with 1.10: `rm` of a lower file, `rm -rf` of a lower directory, `mv` of a lower directory all
 *    leave `.wh.` files and no device). An opaque directory gets `.wh..wh..opq` - and also the xattr
 *    `trusted.overlay.opaque=y`; a copied-up file gets `user.fuseoverlayfs.origin`. Those two are
 *    fuse-overlayfs's private state, which branch.ts removes when the union is taken down.
 *  - its work directory is `<rw>/.wh..wh.work`: on the branch's own filesystem (a size-limited branch
 *    is an ext4 image of its own), hidden (fuse-overlayfs refuses and hides every `.wh.` name) and,
 *    as AUFS metadata at the top of the branch, never part of a diff.
 *  - without CAP_SYS_RESOURCE (setpriv --bounding-set=-sys_resource): writes of the container go
 *    through this root daemon, and the capability would let them pass ext4's project quota limits
 *    and reserved blocks, which a container's own writes could not.
 *  - `dev`: device nodes of the layers work, as in moby's aufs mounts (FUSE defaults to nodev).
 *
 * fuse-overlayfs adds `default_permissions,allow_other,suid` itself when run as root. It takes its
 * options through libfuse, which splits at `,`, and its branch list splits at `:`: paths holding
 * either are refused. Unmounting is a plain umount2 (we are root), retried on EBUSY, lazy at last.
 */
import { execFile, spawn } from 'node:child_process';
import { constants as fsConstants, mkdirSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { errorCode, InvalidOptionError, OperationFailedError, unmount } from '@graphdriver/core';
import type { BranchMount, MountBackend } from './backend.js';
import { FUSE_WORKDIR } from './layout.js';
import { splitMountopt } from './options.js';

const debug = debuglog('graphdriver:aufs');

/** The environment variable that makes fuse-overlayfs write `.wh.` whiteout files. */
export const DISABLE_OVL_WHITEOUT = 'FUSE_OVERLAYFS_DISABLE_OVL_WHITEOUT';

async function executable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `name` in PATH. */
export async function findInPath(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    if (dir === '') continue;
    const p = join(dir, name);
    if (await executable(p)) return p;
  }
  return undefined;
}

/** fuse-overlayfs (the given program or the one in PATH) and /dev/fuse, or why they cannot be used. */
export async function findFuseOverlayfs(program: string | undefined): Promise<{ program: string } | { reason: string }> {
  const found = program ?? (await findInPath('fuse-overlayfs'));
  if (found === undefined) return { reason: 'fuse-overlayfs is not installed (not found in PATH)' };
  if (!(await executable(found))) return { reason: `${found} cannot be run` };
  const fuseDevice = (): Promise<unknown> => access('/dev/fuse', fsConstants.R_OK | fsConstants.W_OK).then(() => undefined, (err: unknown) => err);
  let missing = await fuseDevice();
  if (errorCode(missing) === 'ENOENT') {
    // the device node appears when the module is loaded (moby runs `modprobe aufs` the same way)
    await new Promise<void>((resolve) => execFile('modprobe', ['fuse'], () => resolve()));
    missing = await fuseDevice();
  }
  if (missing !== undefined) return { reason: `/dev/fuse cannot be opened (${errorCode(missing) ?? String(missing)}): load the fuse module` };
  return { program: found };
}

/** The `-o` argument of a union, in fuse-overlayfs's terms. */
export function fuseOptions(m: BranchMount, mountopt: string): string {
  for (const p of [...m.ro, ...(m.rw === undefined ? [] : [m.rw])]) {
    if (/[,:]/.test(p)) throw new InvalidOptionError('home', `aufs: fuse-overlayfs cannot take a branch path with "," or ":" (${p})`);
  }
  if (m.ro.length === 0) throw new RangeError('aufs: a fuse-overlayfs union needs at least one read-only branch');
  const parts = [`lowerdir=${m.ro.join(':')}`];
  if (m.rw !== undefined) parts.push(`upperdir=${m.rw}`, `workdir=${m.rw}/${FUSE_WORKDIR}`);
  parts.push('dev');
  if (m.rw === undefined) parts.push('ro');
  parts.push(...splitMountopt(mountopt), ...(m.options ?? []));
  if (m.mountLabel !== undefined && m.mountLabel !== '') parts.push(`context=${JSON.stringify(m.mountLabel)}`);
  return parts.join(',');
}

function run(argv: readonly string[], env: NodeJS.ProcessEnv, cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

export class FuseOverlayBackend implements MountBackend {
  readonly name = 'fuse-overlayfs';
  readonly #setpriv: Promise<string | undefined>;

  constructor(
    readonly program: string,
    readonly mountopt: string,
    readonly home: string,
  ) {
    this.#setpriv = findInPath('setpriv');
  }

  describe(): string {
    return `fuse-overlayfs (${this.program})`;
  }

  ownsFsType(fsType: string): boolean {
    return fsType.startsWith('fuse');
  }

  async mount(m: BranchMount): Promise<void> {
    const options = fuseOptions(m, this.mountopt);
    // fuse-overlayfs gives up without a word when its work directory is missing
    if (m.rw !== undefined) mkdirSync(join(m.rw, FUSE_WORKDIR), { recursive: true, mode: 0o700 });
    const setpriv = await this.#setpriv;
    const argv = [...(setpriv === undefined ? [] : [setpriv, '--bounding-set=-sys_resource', '--']), this.program, '-o', options, m.target];
    const r = await run(argv, { ...process.env, [DISABLE_OVL_WHITEOUT]: '1' }, this.home).catch((err: unknown) => {
      throw new OperationFailedError(`running ${this.program}`, undefined, err);
    });
    if (r.code !== 0) {
      // it prints "unknown argument ignored: lazytime" on success too; say only what matters
      const stderr = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('unknown argument ignored')).join('; ');
      throw new OperationFailedError(`mounting ${m.target} with ${this.program}`, undefined, new Error(`exit ${r.code}: ${stderr || '<stderr empty>'} (options ${options})`));
    }
    debug('fuse-overlayfs %s -o %s', m.target, options);
  }

  async unmount(target: string): Promise<boolean> {
    try {
      return await unmount(target, { retries: 20, retryDelayMs: 25, lazyFallback: true });
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return false;
      throw err;
    }
  }
}
