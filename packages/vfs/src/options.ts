/**
 * The vfs driver's options, declared once with core's option schemas: the keys containers/storage's
 * vfs accepts (`vfs.imagestore`, `vfs.ignore_chown_errors`, and `vfs.mountopt`, which it refuses
 * with a clear message) plus moby's `vfs.size` (a default size limit for writable layers). Anything
 * else is an InvalidOptionError that names the key. (moby's `vfs.xattrs=i_want_broken_containers`
 * is not taken: core's unpack has no best-effort xattr mode to hand it to.)
 */
import { defineOptions, InvalidOptionError, type ParsedOptions } from '@graphdriver/core';

export const vfsOptions = defineOptions({
  prefix: 'vfs',
  keys: {
    imagestore: {
      type: 'list',
      items: 'path',
      aliases: ['additionalimagestore'],
      description: 'read-only stores whose vfs/dir layers are found as well (comma-separated roots)',
    },
    ignore_chown_errors: { type: 'boolean', description: 'applyDiff keeps going when chown fails (rootless)' },
    mountopt: { type: 'string', description: 'refused: vfs mounts nothing' },
    size: { type: 'size', min: 0, description: 'default size limit of writable layers (project quota)' },
  },
  defaults: { imagestore: [], ignore_chown_errors: false, size: 0 },
  validate(o) {
    if (o.mountopt !== undefined) throw new InvalidOptionError('vfs.mountopt', 'vfs driver does not support mount options');
  },
});

export type VfsOptions = ParsedOptions<typeof vfsOptions.keys, typeof vfsOptions.defaults>;
