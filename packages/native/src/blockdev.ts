/** Block device ioctls that are not a loop device's own. */
import { binding } from './binding.js';

/**
 * BLKDISCARD: tells the device that `length` bytes from `offset` are unused (a thin device hands
 * its blocks back to the pool, a loop device punches a hole in its file). Both multiples of the
 * logical block size; the fd open for writing. EOPNOTSUPP where the device cannot discard.
 */
export const blkDiscard: (fd: number, offset: number, length: number) => Promise<void> = binding.blkDiscard;

/** BLKGETSIZE64: the device's size in bytes. */
export const blkGetSize64: (fd: number) => Promise<number> = binding.blkGetSize64;
