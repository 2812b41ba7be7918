/**
 * The 24-bit device id space of a thin pool, as moby allocates it: a bitmap of ids in use (built
 * from the metadata files at start), and a cursor `next_device_id` that moves forward and wraps, so
 * that a freed id is not handed out again at once (a pool that still holds it after a crash would
 * refuse it, and the cursor then simply moves on).
 */
import { MAX_DEVICE_ID } from './metadata.js';

export class DeviceIdMap {
  readonly #bits = new Uint8Array((MAX_DEVICE_ID + 1) / 8);
  /** The last id handed out (moby's NextDeviceID is incremented before use). */
  next = 0;

  markUsed(id: number): void {
    this.#bits[id >> 3]! |= 1 << (id & 7);
  }

  markFree(id: number): void {
    this.#bits[id >> 3]! &= ~(1 << (id & 7));
  }

  isFree(id: number): boolean {
    return (this.#bits[id >> 3]! & (1 << (id & 7))) === 0;
  }

  /** Takes the next free id after the cursor (wrapping at 2^24), or throws when all are taken. */
  allocate(): number {
    for (let i = 0; i <= MAX_DEVICE_ID; i++) {
      this.next = (this.next + 1) & MAX_DEVICE_ID;
      if (this.isFree(this.next)) {
        this.markUsed(this.next);
        return this.next;
      }
    }
    throw new Error('devmapper: unable to find a free device id (all 2^24 are in use)');
  }
}
