/**
 * Layer id validation: the one gate every id passes before it becomes part of a path.
 */
import { InvalidLayerIdError } from './errors.js';

export const MAX_LAYER_ID_LENGTH = 128;
const LAYER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Throws InvalidLayerIdError unless `id` is a non-empty `[A-Za-z0-9][A-Za-z0-9_.-]*` of at most 128 characters. */
export function validateLayerId(id: unknown): asserts id is string {
  if (typeof id !== 'string') throw new InvalidLayerIdError(id, 'not a string');
  if (id.length === 0) throw new InvalidLayerIdError(id, 'empty');
  if (id.length > MAX_LAYER_ID_LENGTH) {
    throw new InvalidLayerIdError(id, `longer than ${MAX_LAYER_ID_LENGTH} characters`);
  }
  if (!LAYER_ID.test(id)) {
    throw new InvalidLayerIdError(id, 'only letters, digits, "_", "." and "-" are allowed, and it must start with a letter or digit');
  }
}

/** True when `id` would pass validateLayerId. */
export function isValidLayerId(id: unknown): id is string {
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_LAYER_ID_LENGTH && LAYER_ID.test(id);
}

/** A parent argument as drivers receive it: `''`, `null` and `undefined` all mean "no parent". */
export function normalizeParent(parent: string | null | undefined): string | undefined {
  if (parent === undefined || parent === null || parent === '') return undefined;
  validateLayerId(parent);
  return parent;
}
