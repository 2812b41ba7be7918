/**
 * uid/gid translation between container ids (what a layer tar holds) and host ids (what the disk
 * holds), range by range as /proc/<pid>/uid_map describes it. No mappings means identity; an id
 * outside every range cannot be translated, as in moby's IdentityMapping.
 */
import type { IdMap, IdMappings } from '../driver.js';

export type IdDirection = 'toHost' | 'toContainer';

function translate(maps: readonly IdMap[], id: number, direction: IdDirection): number | undefined {
  if (maps.length === 0) return id;
  for (const m of maps) {
    const from = direction === 'toHost' ? m.containerId : m.hostId;
    const to = direction === 'toHost' ? m.hostId : m.containerId;
    if (id >= from && id < from + m.size) return to + (id - from);
  }
  return undefined;
}

/** Translates a uid/gid pair, or says which id has no mapping. */
export class IdTranslator {
  readonly identity: boolean;
  constructor(
    private readonly mappings: IdMappings | undefined,
    private readonly direction: IdDirection,
  ) {
    this.identity = mappings === undefined || (mappings.uidMap.length === 0 && mappings.gidMap.length === 0);
  }

  uid(id: number): number | undefined {
    return this.identity ? id : translate(this.mappings?.uidMap ?? [], id, this.direction);
  }

  gid(id: number): number | undefined {
    return this.identity ? id : translate(this.mappings?.gidMap ?? [], id, this.direction);
  }
}

/** The host uid/gid of container root (owner of implied directories), 0/0 without mappings. */
export function hostRootPair(mappings: IdMappings | undefined): { uid: number; gid: number } {
  const t = new IdTranslator(mappings, 'toHost');
  return { uid: t.uid(0) ?? 0, gid: t.gid(0) ?? 0 };
}
