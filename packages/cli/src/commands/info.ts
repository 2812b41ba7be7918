/**
 * `graphdriver info ID`: one layer - its record (parent, kind, diff id, size, images, children)
 * and the driver's metadata (paths, device ids...).
 */
import { hasReadWriteDiskUsage } from '@graphdriver/core';
import { shortId, size } from '../format.js';
import type { LayerRecord } from '../store.js';
import { defineCommand } from './command.js';
import { existingLayer } from './layer-args.js';

export interface InfoResult {
  id: string;
  record: LayerRecord | undefined;
  images: string[];
  children: string[];
  /** For container layers: the bytes they hold now. */
  usage: number | undefined;
  metadata: Record<string, string>;
}

export const infoCommand = defineCommand<InfoResult>({
  name: 'info',
  summary: "show a layer's record and the driver's metadata for it",
  usage: 'ID',
  options: {},
  args: { min: 1, max: 1 },
  async run(ctx, args) {
    const driver = await ctx.driver();
    const store = await ctx.store();
    const id = await existingLayer(store, driver, args.positionals[0]!);
    const record = store.layer(id);
    let usage: number | undefined;
    if (record?.readWrite === true) {
      usage = hasReadWriteDiskUsage(driver) ? (await driver.readWriteDiskUsage(id)).size : await driver.diffSize(id, record.parent);
    }
    return {
      id,
      record,
      images: store.imagesUsing(id).map((i) => i.tags[0] ?? i.id),
      children: store.children(id),
      usage,
      metadata: await driver.metadata(id),
    };
  },
  render(ctx, r) {
    const rows: Array<[string, string]> = [['ID', r.id]];
    if (r.record === undefined) {
      rows.push(['Record', 'none (not made by the graphdriver command)']);
    } else {
      rows.push(['Parent', r.record.parent ?? '-'], ['Kind', r.record.readWrite ? 'rw (container layer)' : 'ro (image layer)'], ['Created', r.record.created]);
      if (r.record.diffId !== undefined) rows.push(['Diff ID', r.record.diffId]);
      if (r.record.compressedDigest !== undefined) rows.push(['Blob', r.record.compressedDigest]);
      rows.push(['Size', size(r.usage ?? r.record.size)]);
    }
    rows.push(['Images', r.images.length === 0 ? '-' : r.images.join(', ')], ['Children', r.children.length === 0 ? '-' : r.children.map((c) => shortId(c)).join(', ')]);
    for (const [k, v] of rows) ctx.out(`${k}: ${v}`);
    ctx.out('Driver metadata:');
    for (const [k, v] of Object.entries(r.metadata)) ctx.out(` ${k}: ${v}`);
  },
});
