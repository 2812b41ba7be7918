/**
 * Attaching a file to a free loop device for tests, with the retry that core's blockdev/ does
 * for real: another process may take the device between LOOP_CTL_GET_FREE and LOOP_CONFIGURE.
 */
import { closeSync, openSync } from 'node:fs';
import { O, loopConfigure, loopGetFree, type LoopConfigureOptions } from '../../src/index.js';

export interface AttachedLoop {
  /** N of /dev/loopN. */
  n: number;
  /** The open loop device (O_RDWR). With LO_FLAGS.AUTOCLEAR, closing it detaches the device. */
  fd: number;
}

export async function attachLoop(file: string, opts: LoopConfigureOptions, fileFlags: number = O.RDONLY): Promise<AttachedLoop> {
  const backingFd = openSync(file, fileFlags | O.CLOEXEC);
  try {
    for (let attempt = 0; ; attempt++) {
      const n = await loopGetFree();
      const fd = openSync(`/dev/loop${n}`, O.RDWR | O.CLOEXEC);
      try {
        await loopConfigure(fd, backingFd, opts);
        return { n, fd };
      } catch (err) {
        closeSync(fd);
        if ((err as { code?: string }).code !== 'EBUSY' || attempt > 5) throw err;
      }
    }
  } finally {
    closeSync(backingFd);
  }
}
