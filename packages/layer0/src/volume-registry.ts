/**
 * Volume drivers by name (openstorage's volumedrivers registry): `loopback` and `dir` are built in;
 * a third party registers its own factory under a name of its choosing, before starting layer0 with
 * `layer0.volume_driver=<name>`. Making a driver creates its home (`<layer0 home>/volumes/<name>`)
 * and hands it the `layer0.volume_opt` entries.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphDriverError, InvalidOptionError } from '@graphdriver/core';
import { DirVolumeDriver } from './dir.js';
import { LoopbackVolumeDriver } from './loopback.js';
import type { VolumeDriver, VolumeDriverFactory } from './volume.js';

const BUILTIN: Readonly<Record<string, VolumeDriverFactory>> = Object.freeze({
  loopback: (ctx) => LoopbackVolumeDriver.create(ctx),
  dir: (ctx) => DirVolumeDriver.create(ctx),
});

const registered = new Map<string, VolumeDriverFactory>();

const DRIVER_NAME = /^[a-z0-9][a-z0-9_-]*$/;

function checkName(name: unknown): asserts name is string {
  // the name becomes a directory under <home>/volumes
  if (typeof name !== 'string' || name.length > 64 || !DRIVER_NAME.test(name)) {
    throw new InvalidOptionError('layer0.volume_driver', `layer0: invalid volume driver name ${JSON.stringify(name)}: lowercase letters, digits, "_" and "-" only`);
  }
}

/**
 * Makes a volume driver known under `name`. A built-in name may be taken over (the factory then
 * replaces the built-in one in this process); the same name registered twice is an error.
 */
export function registerVolumeDriver(name: string, factory: VolumeDriverFactory): void {
  checkName(name);
  if (typeof factory !== 'function') throw new TypeError(`registerVolumeDriver(${JSON.stringify(name)}): the factory must be a function`);
  if (registered.has(name)) throw new InvalidOptionError('layer0.volume_driver', `layer0: volume driver ${JSON.stringify(name)} is already registered`);
  registered.set(name, factory);
}

/** Forgets a registration (a built-in name falls back to the built-in driver). */
export function unregisterVolumeDriver(name: string): boolean {
  return registered.delete(name);
}

/** Every volume driver name known in this process. */
export function knownVolumeDrivers(): string[] {
  return [...new Set([...Object.keys(BUILTIN), ...registered.keys()])].sort();
}

/** Throws InvalidOptionError unless a driver of this name is known. */
export function assertKnownVolumeDriver(name: string, key = 'layer0.volume_driver'): void {
  checkName(name);
  if (!registered.has(name) && BUILTIN[name] === undefined) {
    throw new InvalidOptionError(key, `layer0: unknown volume driver ${JSON.stringify(name)} (known: ${knownVolumeDrivers().join(', ')}; others plug in with registerVolumeDriver)`);
  }
}

/** Makes the driver registered as `name`, with its home under `volumesDir`. */
export async function openVolumeDriver(name: string, volumesDir: string, options: Readonly<Record<string, string>>): Promise<VolumeDriver> {
  assertKnownVolumeDriver(name);
  const factory = registered.get(name) ?? BUILTIN[name]!;
  const home = join(volumesDir, name);
  await mkdir(home, { recursive: true, mode: 0o700 });
  const driver = await factory({ name, home, options });
  if (typeof driver !== 'object' || driver === null || typeof driver.mount !== 'function') {
    throw new GraphDriverError('ERR_GRAPHDRIVER_INVALID_DRIVER_PACKAGE', `layer0: the factory of volume driver ${JSON.stringify(name)} returned no volume driver`);
  }
  if (driver.type !== 'block' && driver.type !== 'file') {
    throw new GraphDriverError('ERR_GRAPHDRIVER_INVALID_DRIVER_PACKAGE', `layer0: volume driver ${JSON.stringify(name)} has type ${JSON.stringify(driver.type)}; expected "block" or "file"`);
  }
  return driver;
}
