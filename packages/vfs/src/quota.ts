/**
 * Size limits of vfs layers through project quotas (moby's vfs quota_linux.go): one QuotaControl
 * for `<home>/dir`, made the first time a limit is asked for (or at init when `vfs.size` sets a
 * default), and remembered either way: a filesystem without project quotas gives every later
 * request the same QuotaNotSupportedError with the reason the detection found.
 */
import { QuotaControl, QuotaNotSupportedError, isNotSupported } from '@graphdriver/core';

export class LayerQuotas {
  #control: Promise<QuotaControl> | undefined;

  constructor(private readonly layersDir: string) {}

  /** The control, or the QuotaNotSupportedError that says why there is none. */
  control(): Promise<QuotaControl> {
    this.#control ??= QuotaControl.create(this.layersDir).catch((err: unknown) => {
      if (isNotSupported(err)) throw err;
      throw new QuotaNotSupportedError(`project quotas cannot be used on ${this.layersDir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    return this.#control;
  }

  /** Whether limits work here; never throws. */
  async supported(): Promise<boolean> {
    return this.control().then(
      () => true,
      () => false,
    );
  }

  /** Limits `dir` (and what is created in it from now on) to `size` bytes. */
  async limit(dir: string, size: number): Promise<void> {
    const control = await this.control();
    await control.setQuota(dir, { size });
  }
}
