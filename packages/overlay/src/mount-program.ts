/**
 * Mounting through a mount program (containers/storage's `mount_program`, normally
 * fuse-overlayfs): the program is run as `<program> -o <options> <target>` in the store's home and
 * mounts a FUSE filesystem there. It takes absolute paths and has no page limit. Lowers may hold
 * AUFS whiteouts (`.wh.<name>`, `.wh..wh..opq`), which fuse-overlayfs honours; as root it writes
 * 0/0 character devices into the upper. It runs without CAP_SYS_RESOURCE (through setpriv where
 * util-linux has it): it writes on behalf of the container's processes, and with that capability
 * ext4's quota would let it past a layer's size limit. Unmounting goes through fusermount3 (then
 * fusermount, then umount2), as containers/storage does.
 */
import { execFile, spawn } from 'node:child_process';
import { flagWords, OperationFailedError } from '@graphdriver/core';
import type { OverlayMount } from './mount-request.js';

export function programOptions(m: OverlayMount): string {
  const parts = [`lowerdir=${m.lowers.join(':')}`];
  if (m.upper !== undefined) parts.push(`upperdir=${m.upper.dir}`, `workdir=${m.upper.work}`);
  parts.push(...flagWords(m.options.flags), ...m.options.data, ...(m.programMappings ?? []));
  if (m.label !== undefined) parts.push(`context=${JSON.stringify(m.label)}`);
  return parts.join(',');
}

function run(cmd: string, args: readonly string[], cwd: string): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}

let setprivPath: Promise<string | undefined> | undefined;

/** util-linux's setpriv, where it is installed. */
function setpriv(): Promise<string | undefined> {
  setprivPath ??= new Promise((resolve) =>
    execFile('sh', ['-c', 'command -v setpriv'], (err, stdout) => resolve(err === null && stdout.trim() !== '' ? stdout.trim() : undefined)),
  );
  return setprivPath;
}

export async function mountWithProgram(program: string, m: OverlayMount, home: string): Promise<void> {
  const argv = ['-o', programOptions(m), m.target];
  const sp = await setpriv();
  const [cmd, args] = sp === undefined ? [program, argv] : [sp, ['--bounding-set=-sys_resource', '--', program, ...argv]];
  const r = await run(cmd, args, home).catch((err: unknown) => {
    throw new OperationFailedError(`running the mount program ${program}`, undefined, err);
  });
  if (r.code !== 0) {
    throw new OperationFailedError(`mounting ${m.target} with ${program}`, undefined, new Error(`exit ${r.code}: ${r.stderr.trim() || '<stderr empty>'}`));
  }
}

/** fusermount3 -u, else fusermount -u; resolves false when neither could unmount (the caller then tries umount2). */
export function fuseUnmount(target: string): Promise<boolean> {
  const attempt = (cmd: string): Promise<boolean> =>
    new Promise((resolve) => execFile(cmd, ['-u', target], (err) => resolve(err === null)));
  return attempt('fusermount3').then((ok) => ok || attempt('fusermount'));
}
