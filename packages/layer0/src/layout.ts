/**
 * Where layer0 keeps things (a format: a later run, or another host sharing the volumes, reads it):
 *
 *   <home>/layer0.json          the persisted state (state.ts)
 *   <home>/overlay/             the wrapped overlay driver's home, overlay2's layout
 *   <home>/overlay/<X>          for a container layer on a volume: a symlink `../<X>-vol/<X>`
 *   <home>/<X>-vol/             where the volume of container layer X is mounted (openstorage's loID)
 *   <home>/<X>-vol/<X>/         the overlay layer itself, inside the volume (diff, work, link, lower, merged)
 *   <home>/<X>-vol/upper        in a volume between remove and re-create: the saved upper (diff)
 *   <home>/volumes/<driver>/    each volume driver's own directory (loopback: <name>.img + <name>.json)
 *
 * The wrapped overlay lives in a directory of its own so that nothing of layer0's can ever look like
 * one of its layers (a `<X>-vol` is a valid layer id), and the mounted volumes are reached from the
 * overlay store through one symlink per container layer.
 */
import { join } from 'node:path';

export const DRIVER_NAME = 'layer0';
export const OVERLAY_DIR = 'overlay';
export const VOLUMES_DIR = 'volumes';
/** openstorage's loID suffix. */
export const MOUNT_SUFFIX = '-vol';
/** openstorage's name for the upper saved in the volume. */
export const SAVED_UPPER = 'upper';
/** The init layer suffix the engine uses (`<X>-init` is made before container layer X). */
export const INIT_SUFFIX = '-init';
/** Names of the temporary entries a move into a volume leaves in the overlay home if interrupted. */
export const MOVE_PREFIX = '.layer0-move-';

export class Layer0Layout {
  readonly overlayHome: string;
  readonly volumesDir: string;

  constructor(readonly home: string) {
    this.overlayHome = join(home, OVERLAY_DIR);
    this.volumesDir = join(home, VOLUMES_DIR);
  }

  /** `<home>/<X>-vol`: the volume's mount point. */
  mountPoint(id: string): string {
    return join(this.home, `${id}${MOUNT_SUFFIX}`);
  }

  /** `<home>/<X>-vol/<X>`: the overlay layer inside the mounted volume. */
  layerInVolume(id: string): string {
    return join(this.mountPoint(id), id);
  }

  /** `<home>/<X>-vol/upper`. */
  savedUpper(id: string): string {
    return join(this.mountPoint(id), SAVED_UPPER);
  }

  /** `<home>/overlay/<X>`: what the overlay driver sees as the layer. */
  overlayEntry(id: string): string {
    return join(this.overlayHome, id);
  }
}

/** X for `<X>-init`, or undefined for any other id. */
export function containerOfInit(id: string): string | undefined {
  if (!id.endsWith(INIT_SUFFIX) || id.length === INIT_SUFFIX.length) return undefined;
  return id.slice(0, -INIT_SUFFIX.length);
}
