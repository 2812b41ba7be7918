/**
 * Repair of the short links (`<home>/l/<name>` -> `../<id>/diff`) and the `link` files that name
 * them, after a power cut or a careless cleanup - containers/storage's recreateSymlinks, in our
 * own words:
 *
 *  - a symlink in `l/` that is not `../<id>/diff`, or whose layer is gone, is removed;
 *  - a layer whose `link` file names a link that is missing gets the link back;
 *  - a layer whose `link` file is missing, empty or garbled takes the name of a symlink that
 *    already points at it (children's `lower` files use that name), else a new name;
 *  - two layers claiming one name: the one the symlink points at keeps it, the other gets a new one.
 *
 * What cannot be repaired is a child's `lower` entry whose link and owner are both lost: nothing
 * records which layer the name stood for. That is reported, not guessed.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdir, readdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { debuglog } from 'node:util';
import { errorCode, writeFileAtomic } from '@graphdriver/core';
import { generateLinkId, isLinkName } from './link-id.js';
import { DIFF, LINK_FILE, type Layout } from './layout.js';

const debug = debuglog('graphdriver:overlay');

export interface LinkRepairReport {
  /** Links made again (`l/<name>` for a layer that names it). */
  restored: string[];
  /** `link` files written again (layer ids). */
  relinked: string[];
  /** Links removed (garbled, or their layer is gone). */
  removed: string[];
}

/** The layer id a link target `../<id>/diff` points at, or undefined for anything else. */
export function linkTargetLayer(target: string): string | undefined {
  const parts = target.split('/');
  if (parts.length !== 3 || parts[0] !== '..' || parts[2] !== DIFF) return undefined;
  return parts[1];
}

/** Makes `l/` and every layer's `link` agree again (see the top of the file). Safe to run any time no layer is being created or removed. */
export async function repairLinks(layout: Layout): Promise<LinkRepairReport> {
  const report: LinkRepairReport = { restored: [], relinked: [], removed: [] };
  await mkdir(layout.linkDir, { recursive: true, mode: 0o700 });
  const layers = new Set((await readdir(layout.home)).filter((n) => layout.isLayerDir(n)));

  // What the symlinks say: name -> layer, and layer -> names pointing at it.
  const linkOwner = new Map<string, string>();
  const namesOf = new Map<string, string[]>();
  for (const name of readdirSync(layout.linkDir)) {
    let target: string;
    try {
      target = readlinkSync(join(layout.linkDir, name));
    } catch (err) {
      if (errorCode(err) === 'ENOENT') continue;
      // not a symlink at all: garbage in l/
      target = '';
    }
    const owner = linkTargetLayer(target);
    if (!isLinkName(name) || owner === undefined || !layers.has(owner)) {
      await rm(join(layout.linkDir, name), { force: true, recursive: true });
      report.removed.push(name);
      continue;
    }
    linkOwner.set(name, owner);
    namesOf.set(owner, [...(namesOf.get(owner) ?? []), name]);
  }

  for (const id of [...layers].sort()) {
    const layer = { id, dir: layout.layerDir(id), home: layout.home, readOnly: false };
    const named = layout.readLinkName(layer);
    if (named !== undefined) {
      const owner = linkOwner.get(named);
      if (owner === id) continue;
      if (owner === undefined) {
        await symlink(join('..', id, DIFF), join(layout.linkDir, named));
        linkOwner.set(named, id);
        report.restored.push(named);
        continue;
      }
      // Another layer's link: this layer's name is taken, fall through to a name of its own.
      debug('repairLinks: %s names link %s, which points at %s', id, named, owner);
    }
    let name = namesOf.get(id)?.[0];
    if (name === undefined) {
      do name = generateLinkId();
      while (linkOwner.has(name));
      await symlink(join('..', id, DIFF), join(layout.linkDir, name));
      linkOwner.set(name, id);
      report.restored.push(name);
    }
    await writeFileAtomic(join(layer.dir, LINK_FILE), name, { mode: 0o644, syncDirectory: false });
    report.relinked.push(id);
  }
  if (report.restored.length + report.relinked.length + report.removed.length > 0) {
    debug('repairLinks %s: restored %o, relinked %o, removed %o', layout.home, report.restored, report.relinked, report.removed);
  }
  return report;
}
