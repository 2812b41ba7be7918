/**
 * Turning what the user typed into layer ids: a layer id or a unique prefix of a recorded one, and
 * for parents also an image (its top layer). The parent a diff is taken against is the recorded
 * one unless --parent says otherwise; a layer the store has no record of needs --parent.
 */
import { LayerUnknownError, validateLayerId, type Driver } from '@graphdriver/core';
import { UsageError } from '../errors.js';
import type { Store } from '../store.js';

/** An existing layer named by id or unique prefix. */
export async function existingLayer(store: Store, driver: Driver, name: string): Promise<string> {
  const id = store.resolveLayer(name);
  validateLayerId(id);
  if (!(await driver.exists(id))) throw new LayerUnknownError(id);
  return id;
}

/** A parent named by layer id (or prefix) or by image (its top layer). */
export async function parentLayer(store: Store, driver: Driver, name: string): Promise<string> {
  const id = store.resolveLayer(name);
  if (store.layer(id) !== undefined || (/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id) && (await driver.exists(id)))) {
    return existingLayer(store, driver, id);
  }
  const img = store.findImage(name);
  if (img !== undefined) {
    const top = img.layers[img.layers.length - 1];
    if (top === undefined) throw new UsageError(`image ${name} has no layers to be a parent`);
    return existingLayer(store, driver, top);
  }
  throw new LayerUnknownError(name, 'layer or image');
}

/**
 * The parent to diff `id` against: `explicit` (a layer or image, or '' for none) when given, else
 * the recorded parent; a layer without a record needs it said.
 */
export async function diffParent(store: Store, driver: Driver, id: string, explicit: string | undefined): Promise<string | undefined> {
  if (explicit !== undefined) return explicit === '' ? undefined : parentLayer(store, driver, explicit);
  const rec = store.layer(id);
  if (rec === undefined) {
    throw new UsageError(`layer ${id} was not made by graphdriver's command line, so its parent is not known: give --parent ID (or --parent '' for none)`);
  }
  return rec.parent;
}
