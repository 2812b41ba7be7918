/**
 * Loop device ioctls. The sequence "get a free number, open /dev/loopN, configure, retry on EBUSY
 * when someone else took it" is policy and lives in core's blockdev/; these are the single calls.
 */
import { binding } from './binding.js';

export interface LoopConfigureOptions {
  /** LO_FLAGS.* (READ_ONLY, AUTOCLEAR, PARTSCAN, DIRECT_IO). */
  flags?: number;
  /** Byte offset into the backing file. */
  offset?: number;
  /** Bytes of the backing file to expose; 0 = up to its end. */
  sizeLimit?: number;
  /** Logical block size (512, 1024, 2048, 4096); 0 = the default. */
  blockSize?: number;
}

export interface LoopStatus {
  /** N of /dev/loopN. */
  number: number;
  /** st_dev and st_ino of the backing file, and the device it sits on. */
  device: number;
  inode: number;
  rdevice: number;
  offset: number;
  sizeLimit: number;
  /** LO_FLAGS.* in effect. */
  flags: number;
  /** Full path from sysfs (with " (deleted)" if it was unlinked); the ioctl's 63-byte copy where sysfs is absent. */
  backingFile: string;
}

/** LOOP_CTL_GET_FREE on /dev/loop-control: the number N of a free /dev/loopN (created if needed). */
export const loopGetFree: () => Promise<number> = binding.loopGetFree;

/** LOOP_CONFIGURE (Linux 5.8): attaches `backingFd` to the open loop device in one step. EBUSY when the device is taken. */
export function loopConfigure(loopFd: number, backingFd: number, opts: LoopConfigureOptions = {}): Promise<void> {
  return binding.loopConfigure(loopFd, backingFd, opts.flags, opts.offset, opts.sizeLimit, opts.blockSize);
}

/** LOOP_GET_STATUS64; ENXIO when the device has no backing file. */
export const loopStatus: (loopFd: number) => Promise<LoopStatus> = binding.loopStatus;

/**
 * LOOP_SET_STATUS64 with the device's other settings kept: sets its flags to `flags`. The kernel
 * changes only LO_FLAGS.AUTOCLEAR (both ways: clearing it takes back a LOOP_CLR_FD that waits for
 * the last close) and LO_FLAGS.PARTSCAN (set only); the others stay as they are.
 */
export const loopSetFlags: (loopFd: number, flags: number) => Promise<void> = binding.loopSetFlags;

/**
 * LOOP_CLR_FD: detaches the backing file. Current kernels do it at the last close of the device
 * (the caller's fd included); until then the device is in rundown and loopStatus gives ENXIO.
 */
export const loopClear: (loopFd: number) => Promise<void> = binding.loopClear;

/** LOOP_SET_CAPACITY: re-reads the backing file's size after it grew. */
export const loopSetCapacity: (loopFd: number) => Promise<void> = binding.loopSetCapacity;
