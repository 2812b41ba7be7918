/**
 * Small assertions the cases share: typed-error expectations, optional-capability gates, mount
 * table queries for a path, and removing layers in reverse order as the Go cases' defers do.
 */
import { strict as assert } from 'node:assert';
import { realpath } from 'node:fs/promises';
import { errorCode, isAtOrUnder, mounts, type ProtoDriver } from '@graphdriver/core';
import { skipCase } from '../runner.js';
import type { CaseContext } from '../context.js';

/** Awaits `p` and checks that it rejects with an error whose `code` is one of `codes`. Returns the error. */
export async function expectCode(p: Promise<unknown>, codes: readonly string[], what: string): Promise<Error> {
  let result: unknown;
  try {
    result = await p;
  } catch (err) {
    const code = errorCode(err);
    assert.ok(
      code !== undefined && codes.includes(code),
      `${what}: expected an error with code ${codes.join(' or ')}, got ${err instanceof Error ? `${err.name} [${code ?? 'no code'}]: ${err.message}` : String(err)}`,
    );
    return err as Error;
  }
  assert.fail(`${what}: expected an error with code ${codes.join(' or ')}, but it succeeded${result === undefined ? '' : ` (${JSON.stringify(result)})`}`);
}

/**
 * Gates a case on an optional capability: present and not declared `false` runs; declared `true`
 * but missing fails; otherwise the case is skipped with a reason naming the method.
 */
export function requireCapability(ctx: CaseContext, name: 'createFromTemplate' | 'listLayers', present: boolean): void {
  const declared = ctx.capabilities[name];
  if (declared === false) skipCase(`the driver declares no ${name}()`);
  if (present) return;
  if (declared === true) assert.fail(`the driver declares ${name}() but does not implement it`);
  skipCase(`the driver does not implement ${name}()`);
}

/** The mounts whose mount point is exactly `path` (after resolving symlinks). */
export async function mountsAt(path: string): Promise<number> {
  const canonical = await realpath(path).catch(() => path);
  return (await mounts()).filter((m) => m.mountPoint === canonical).length;
}

/** Mount points at or under `dir`. */
export async function mountPointsUnder(dir: string): Promise<string[]> {
  const canonical = await realpath(dir).catch(() => dir);
  return (await mounts()).filter((m) => isAtOrUnder(m.mountPoint, canonical)).map((m) => m.mountPoint);
}

/** Removes layers last-made first and checks each is gone, as the Go cases' deferred Remove calls. */
export async function removeLayers(driver: ProtoDriver, ids: readonly string[]): Promise<void> {
  for (const id of [...ids].reverse()) {
    await driver.remove(id);
    assert.equal(await driver.exists(id), false, `layer ${id} still exists after remove()`);
  }
}

/** Whether a driver mounts layers: the path get() returned is a mount point while held. */
export async function isMountedPath(path: string): Promise<boolean> {
  return (await mountsAt(path)) > 0;
}

