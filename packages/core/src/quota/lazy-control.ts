/**
 * A driver's project quota control for its layers' directory (moby's quota.NewControl as the
 * drivers hold it): made the first time a limit is asked for (or at start when a default size is
 * set), and remembered either way - a filesystem without project quotas gives every later request
 * the same QuotaNotSupportedError, with the reason the detection found.
 */
import { isNotSupported, QuotaNotSupportedError } from '../errors.js';
import { QuotaControl, type QuotaLimit } from './control.js';

export class LazyQuotaControl {
  #control: Promise<QuotaControl> | undefined;

  /** `dir`: the directory the layers are made in; `driver`: the name error messages start with. */
  constructor(
    readonly dir: string,
    private readonly driver: string,
  ) {}

  /** The control, or the QuotaNotSupportedError that says why there is none. */
  control(): Promise<QuotaControl> {
    this.#control ??= QuotaControl.create(this.dir).catch((err: unknown) => {
      if (isNotSupported(err)) throw err;
      throw new QuotaNotSupportedError(`${this.driver}: project quotas cannot be used on ${this.dir}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    });
    return this.#control;
  }

  /** Limits `dir` (and what is created in it from now on). */
  async limit(dir: string, limit: QuotaLimit): Promise<void> {
    await (await this.control()).setQuota(dir, limit);
  }
}
