/**
 * The records the built-in volume drivers keep beside their volumes: `<driver home>/<name>.json`
 * with the volume's name, labels, size limit, filesystem and creation time (what openstorage's
 * drivers keep in their kvdb). A record is written atomically after the volume's data exists and
 * removed before it, so a volume without a record is half made or half deleted: garbage, never a
 * volume. Ids of the built-in drivers are the names.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode, LayerUnknownError, OperationFailedError, removeAtomicTemporaries, writeFileAtomic } from '@graphdriver/core';
import { isValidVolumeName } from './naming.js';
import type { VolumeQuery } from './volume.js';

export interface VolumeRecord {
  name: string;
  labels: Record<string, string>;
  /** Bytes; absent for no limit. */
  size?: number;
  format?: string;
  /** ISO 8601. */
  ctime: string;
}

const SUFFIX = '.json';

export class VolumeRecords {
  constructor(readonly dir: string) {}

  path(name: string): string {
    return join(this.dir, `${name}${SUFFIX}`);
  }

  /** The record of `name`, or undefined when there is none. */
  async read(name: string): Promise<VolumeRecord | undefined> {
    if (!isValidVolumeName(name)) return undefined;
    let text: string;
    try {
      text = await readFile(this.path(name), 'utf8');
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return undefined;
      throw new OperationFailedError(`reading the record of volume ${JSON.stringify(name)}`, undefined, err);
    }
    try {
      return parseRecord(JSON.parse(text), name);
    } catch (err) {
      throw new OperationFailedError(`reading the record of volume ${JSON.stringify(name)}`, undefined, err);
    }
  }

  /** The record of `name`; LayerUnknownError (a volume) when there is none. */
  async get(name: string): Promise<VolumeRecord> {
    const r = await this.read(name);
    if (r === undefined) throw new LayerUnknownError(name, 'volume');
    return r;
  }

  async write(record: VolumeRecord): Promise<void> {
    await writeFileAtomic(this.path(record.name), `${JSON.stringify(record, null, 2)}\n`);
  }

  async remove(name: string): Promise<void> {
    await rm(this.path(name), { force: true });
  }

  /** Every record matching `query`, by name. */
  async list(query: VolumeQuery = {}): Promise<VolumeRecord[]> {
    const names = await readdir(this.dir);
    await removeAtomicTemporaries(this.dir, names);
    const out: VolumeRecord[] = [];
    for (const file of names.sort()) {
      if (!file.endsWith(SUFFIX)) continue;
      const name = file.slice(0, -SUFFIX.length);
      if (query.name !== undefined && name !== query.name) continue;
      const r = await this.read(name);
      if (r !== undefined && matches(r, query)) out.push(r);
    }
    return out;
  }
}

export function matches(r: { name: string; labels: Readonly<Record<string, string>> }, query: VolumeQuery): boolean {
  if (query.name !== undefined && r.name !== query.name) return false;
  for (const [k, v] of Object.entries(query.labels ?? {})) if (r.labels[k] !== v) return false;
  return true;
}

function parseRecord(raw: unknown, name: string): VolumeRecord {
  if (typeof raw !== 'object' || raw === null) throw new Error('not a JSON object');
  const o = raw as Record<string, unknown>;
  if (o.name !== name) throw new Error(`it names ${JSON.stringify(o.name)}`);
  const labels: Record<string, string> = {};
  if (typeof o.labels === 'object' && o.labels !== null) {
    for (const [k, v] of Object.entries(o.labels as Record<string, unknown>)) if (typeof v === 'string') labels[k] = v;
  }
  return {
    name,
    labels,
    ...(typeof o.size === 'number' ? { size: o.size } : {}),
    ...(typeof o.format === 'string' ? { format: o.format } : {}),
    ctime: typeof o.ctime === 'string' ? o.ctime : new Date(0).toISOString(),
  };
}
