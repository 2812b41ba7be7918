/**
 * The host uid/gid that container root maps to: the owner drivers give a new layer's root (and
 * overlay its work dir). 0/0 without mappings; mappings that leave container root unmapped are an
 * InvalidOptionError, since no owner could be chosen for the layer.
 */
import type { IdMappings } from './driver.js';
import { InvalidOptionError } from './errors.js';

export function hostRoot(mappings: IdMappings | undefined): { uid: number; gid: number } {
  const find = (maps: IdMappings['uidMap'] | undefined): number => {
    if (maps === undefined || maps.length === 0) return 0;
    const m = maps.find((r) => r.containerId <= 0 && 0 < r.containerId + r.size);
    if (m === undefined) throw new InvalidOptionError('idMappings', 'the id mappings do not map container root (0)');
    return m.hostId - m.containerId;
  };
  return { uid: find(mappings?.uidMap), gid: find(mappings?.gidMap) };
}
