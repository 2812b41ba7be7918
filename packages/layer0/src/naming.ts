/**
 * Volume names and labels. openstorage's layer0 looked a container layer's volume up by the name of
 * the image below it (the parent of `<X>-init`) and took the first one not attached. We keep that
 * name as the base and number further volumes of the same image (`<image>`, `<image>.1`,
 * `<image>.2`...), so two containers of one image get volumes of their own; every volume we make
 * carries labels saying which container layer and image it serves, so that it can be found again
 * by the container on any host that sees it. Names become file names of the built-in drivers: the
 * same alphabet as layer ids, a little longer to leave room for the number.
 */
import { InvalidOptionError } from '@graphdriver/core';

export const MAX_VOLUME_NAME_LENGTH = 200;
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The label naming the container layer a volume was made for (or claimed by). */
export const CONTAINER_LABEL = 'io.graphdriver.layer0.container';
/** The label naming the image the container layer was made on. */
export const IMAGE_LABEL = 'io.graphdriver.layer0.image';

/** True when `name` can be a volume name. */
export function isValidVolumeName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && name.length <= MAX_VOLUME_NAME_LENGTH && VOLUME_NAME.test(name);
}

/** Throws InvalidOptionError (naming `key`) unless `name` is a valid volume name. */
export function validateVolumeName(name: unknown, key = 'volume'): asserts name is string {
  if (!isValidVolumeName(name)) {
    throw new InvalidOptionError(
      key,
      `layer0: invalid volume name ${JSON.stringify(name)}: 1 to ${MAX_VOLUME_NAME_LENGTH} letters, digits, "_", "." or "-", starting with a letter or digit`,
    );
  }
}

/**
 * The base name of the volumes of a container layer: its image's id, as layer0 named them, or the
 * container layer's own id when it has no image (an `<X>-init` without parent).
 */
export function baseVolumeName(image: string | undefined, container: string): string {
  return image ?? container;
}

/** The `n`th name after `base` (0: `base`, 1: `base.1`, ...). */
export function numberedVolumeName(base: string, n: number): string {
  return n === 0 ? base : `${base}.${n}`;
}

/** True when `name` is `base` or `base.<n>`. */
export function isNamedAfter(name: string, base: string): boolean {
  if (name === base) return true;
  return name.startsWith(`${base}.`) && /^[1-9][0-9]*$/.test(name.slice(base.length + 1));
}

/** The first numbered name after `base` that `taken` does not hold. */
export function nextFreeVolumeName(base: string, taken: ReadonlySet<string>): string {
  for (let n = 0; ; n++) {
    const name = numberedVolumeName(base, n);
    if (!taken.has(name)) return name;
  }
}

/** The labels of a volume made for container layer `container` on `image`. */
export function volumeLabels(container: string, image: string | undefined): Record<string, string> {
  return image === undefined ? { [CONTAINER_LABEL]: container } : { [CONTAINER_LABEL]: container, [IMAGE_LABEL]: image };
}
