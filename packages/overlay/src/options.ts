/**
 * The overlay driver's options, declared once with core's option schemas: the keys of
 * containers/storage's overlay (`mountopt`, `size`, `inodes`, `imagestore`, `mount_program`,
 * `ignore_chown_errors`), moby's overlay2 prefix as an alias (`overlay2.size`), and our own
 * `mount_api`, which chooses how the kernel is asked to mount (see mounter.ts). Anything else is an
 * InvalidOptionError that names the key.
 */
import { defineOptions, InvalidOptionError, type ParsedOptions } from '@graphdriver/core';

/** How mounts are made: see mounter.ts and the README's "Mounting" section. */
export const MOUNT_APIS = ['auto', 'new', 'classic'] as const;
export type MountApi = (typeof MOUNT_APIS)[number];

export const overlayOptions = defineOptions({
  prefix: 'overlay',
  prefixAliases: ['overlay2'],
  keys: {
    mountopt: {
      type: 'string',
      description: 'comma-separated mount options for every overlay mount (nodev, metacopy=on, ...)',
    },
    size: { type: 'size', min: 0, description: 'default size limit of writable layers (project quota)' },
    inodes: { type: 'integer', min: 0, description: 'default inode limit of writable layers (project quota)' },
    imagestore: {
      type: 'list',
      items: 'path',
      aliases: ['additionalimagestore'],
      description: 'read-only stores whose overlay/<id> layers are found as well (comma-separated roots)',
    },
    mount_program: {
      type: 'path',
      description: 'a FUSE program that mounts the layers instead of the kernel (fuse-overlayfs)',
    },
    ignore_chown_errors: { type: 'boolean', description: 'applyDiff keeps going when chown fails (rootless)' },
    mount_api: {
      type: 'enum',
      values: MOUNT_APIS,
      description: 'auto (fastest that fits), new (fsopen/fsconfig lowerdir+), classic (mount(2) only)',
    },
  },
  defaults: { mountopt: '', size: 0, inodes: 0, imagestore: [], ignore_chown_errors: false, mount_api: 'auto' },
  validate(o) {
    if (o.mount_program !== undefined && o.mount_api === 'new') {
      throw new InvalidOptionError('overlay.mount_api', 'overlay: mount_api=new cannot be combined with a mount_program, which mounts by itself');
    }
  },
});

export type OverlayOptions = ParsedOptions<typeof overlayOptions.keys, typeof overlayOptions.defaults>;
