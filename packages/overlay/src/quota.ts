/**
 * Size and inode limits of writable layers through project quotas (moby's overlay2 and
 * containers/storage's overlay on xfs with `pquota`; ext4 with the project feature too): one
 * QuotaControl for the home, made the first time a limit is asked for (or at init when
 * `overlay.size` sets a default), and remembered either way - a filesystem without project quotas
 * gives every later request the same QuotaNotSupportedError with the reason found.
 */
import { QuotaControl, QuotaNotSupportedError, isNotSupported } from '@graphdriver/core';

export class LayerQuotas {
  #control: Promise<QuotaControl> | undefined;

  constructor(private readonly home: string) {}

  /** The control, or the QuotaNotSupportedError that says why there is none. */
  control(): Promise<QuotaControl> {
    this.#control ??= QuotaControl.create(this.home).catch((err: unknown) => {
      if (isNotSupported(err)) throw err;
      throw new QuotaNotSupportedError(`project quotas cannot be used on ${this.home}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    return this.#control;
  }

  /** Limits `dir` (and what is created in it from now on) to `size` bytes and `inodes` inodes (0: no limit). */
  async limit(dir: string, limits: { size: number; inodes: number }): Promise<void> {
    const control = await this.control();
    await control.setQuota(dir, { size: limits.size, inodes: limits.inodes });
  }
}
