/**
 * `graphdriver ls`: every layer with its parent, kind, size and the images it tops, parents before
 * children. Layers the driver has but the store does not record (made by another program, or the
 * remains of a killed command) are listed as untracked; records whose layer is gone as missing.
 */
import { hasListLayers } from '@graphdriver/core';
import { shortId, size, table } from '../format.js';
import { boolOption, defineCommand } from './command.js';

export interface LayerListing {
  id: string;
  parent: string | undefined;
  readWrite: boolean | undefined;
  /** Bytes: recorded for image layers, measured for container layers. */
  size: number | undefined;
  created: string | undefined;
  diffId: string | undefined;
  /** Tags (or ids) of the images whose top layer this is. */
  images: string[];
  state: 'ok' | 'untracked' | 'missing';
}

export interface LsResult {
  driver: string;
  layers: LayerListing[];
}

export const lsCommand = defineCommand<LsResult>({
  name: 'ls',
  summary: 'list layers with their parents, sizes and images',
  usage: '[--no-trunc]',
  options: {
    'no-trunc': { type: 'boolean', description: 'full ids' },
  },
  args: { min: 0, max: 0 },
  async run(ctx) {
    const driver = await ctx.driver();
    const store = await ctx.store();
    const onDisk = hasListLayers(driver) ? new Set(await driver.listLayers()) : undefined;
    const out: LayerListing[] = [];
    for (const rec of store.layers()) {
      const present = onDisk !== undefined ? onDisk.has(rec.id) : await driver.exists(rec.id);
      let bytes = rec.size;
      if (present && rec.readWrite) {
        bytes = await driver.diffSize(rec.id, rec.parent); // content bytes, as image layers count theirs
      }
      out.push({
        id: rec.id,
        parent: rec.parent,
        readWrite: rec.readWrite,
        size: bytes,
        created: rec.created,
        diffId: rec.diffId,
        images: store.imagesTopping(rec.id).map((i) => i.tags[0] ?? shortId(i.id)),
        state: present ? 'ok' : 'missing',
      });
    }
    for (const id of onDisk ?? []) {
      if (store.layer(id) === undefined) {
        out.push({ id, parent: undefined, readWrite: undefined, size: undefined, created: undefined, diffId: undefined, images: [], state: 'untracked' });
      }
    }
    // parents before children, then by creation time; untracked layers (no parent known) last
    const depth = new Map<string, number>();
    const byId = new Map(out.map((l) => [l.id, l]));
    const depthOf = (l: LayerListing, seen = new Set<string>()): number => {
      const known = depth.get(l.id);
      if (known !== undefined) return known;
      const p = l.parent === undefined ? undefined : byId.get(l.parent);
      const d = p === undefined || seen.has(l.id) ? 0 : depthOf(p, seen.add(l.id)) + 1;
      depth.set(l.id, d);
      return d;
    };
    const untracked = (l: LayerListing): number => (l.state === 'untracked' ? 1 : 0);
    out.sort((a, b) => untracked(a) - untracked(b) || depthOf(a) - depthOf(b) || (a.created ?? '').localeCompare(b.created ?? '') || a.id.localeCompare(b.id));
    return { driver: driver.name, layers: out };
  },
  render(ctx, r, args) {
    for (const line of layerTable(r, boolOption(args, 'no-trunc'))) ctx.out(line);
  },
});

export function layerTable(r: LsResult, fullIds: boolean): string[] {
  return table(
    ['LAYER', 'PARENT', 'KIND', 'SIZE', 'IMAGE', 'STATE'],
    r.layers.map((l) => [
      shortId(l.id, fullIds),
      l.parent === undefined ? (l.state === 'untracked' ? '?' : '-') : shortId(l.parent, fullIds),
      l.readWrite === undefined ? '?' : l.readWrite ? 'rw' : 'ro',
      size(l.size),
      l.images.join(', '),
      l.state === 'ok' ? '' : l.state,
    ]),
  );
}
