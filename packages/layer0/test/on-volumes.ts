/**
 * A layer0 driver whose createReadWrite puts every layer on a volume of its own (storageOpt
 * `volume`), so that graphtest's whole suite runs against layers inside volumes.
 */
import type { CreateOpts, Driver } from '@graphdriver/core';
import type { Layer0Driver } from '../src/index.js';

export function onVolumes(d: Layer0Driver): Driver {
  let n = 0;
  const createReadWrite = (id: string, parent?: string, opts?: CreateOpts): Promise<void> =>
    // a name of its own per creation: a layer made again under one id would get its saved upper back
    d.createReadWrite(id, parent, { ...opts, storageOpt: { ...(opts?.storageOpt ?? {}), volume: `${id}.v${n++}` } });
  return new Proxy(d, {
    get(target, prop, receiver) {
      if (prop === 'createReadWrite') return createReadWrite;
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
