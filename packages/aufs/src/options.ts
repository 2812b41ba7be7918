/**
 * The aufs driver's options, declared once with core's option schemas: containers/storage's
 * `aufs.mountopt`, our choice of mount backend (`mount_backend`, `mount_program`), aufslimit's size
 * limits (`size`, the default of writable layers, and `limit_method`, how a limit is enforced), and
 * `ignore_chown_errors` as the other drivers take it. Anything else is an InvalidOptionError that
 * names the key.
 */
import { defineOptions, InvalidOptionError, type ParsedOptions } from '@graphdriver/core';

/** auto: the kernel's aufs where the kernel has it, else fuse-overlayfs. */
export const MOUNT_BACKENDS = ['auto', 'aufs', 'fuse-overlayfs'] as const;
export type MountBackendChoice = (typeof MOUNT_BACKENDS)[number];

/** auto: a project quota where the filesystem of `diff/` has them, else a loop-mounted ext4 image. */
export const LIMIT_METHODS = ['auto', 'loop', 'quota'] as const;
export type LimitMethod = (typeof LIMIT_METHODS)[number];

export const aufsOptions = defineOptions({
  prefix: 'aufs',
  keys: {
    mountopt: { type: 'string', description: 'comma-separated options added to every mount (containers/storage)' },
    mount_backend: { type: 'enum', values: MOUNT_BACKENDS, description: 'auto, aufs (the kernel filesystem) or fuse-overlayfs' },
    mount_program: { type: 'path', description: 'the fuse-overlayfs binary (default: found in PATH)' },
    size: { type: 'size', min: 0, description: 'default size limit of writable layers' },
    limit_method: { type: 'enum', values: LIMIT_METHODS, description: 'how a size limit is enforced: auto, loop (ext4 image) or quota (project quota)' },
    ignore_chown_errors: { type: 'boolean', description: 'applyDiff keeps going when chown fails (rootless)' },
  },
  defaults: { mountopt: '', mount_backend: 'auto', size: 0, limit_method: 'auto', ignore_chown_errors: false },
  validate(o) {
    if (o.mount_program !== undefined && o.mount_backend === 'aufs') {
      throw new InvalidOptionError('aufs.mount_program', 'aufs: mount_program is for the fuse-overlayfs backend, not for mount_backend=aufs');
    }
    for (const opt of splitMountopt(o.mountopt)) {
      if (/^(br|dirs|append|add|del|mod|prepend|ins|xino)[:=]/.test(opt)) {
        throw new InvalidOptionError('aufs.mountopt', `aufs: mountopt ${JSON.stringify(opt)} would change the branches the driver manages`);
      }
    }
  },
});

export type AufsOptions = ParsedOptions<typeof aufsOptions.keys, typeof aufsOptions.defaults>;

/** The words of a comma-separated mount option string, empty ones dropped. */
export function splitMountopt(s: string | undefined): string[] {
  return (s ?? '').split(',').map((w) => w.trim()).filter((w) => w !== '');
}
