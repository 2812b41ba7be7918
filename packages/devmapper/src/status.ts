/**
 * The rows of status() as `docker info` shows them for devicemapper (moby's Driver.Status), with
 * go-units' HumanSize for sizes, plus the row graphdriver adds: which pool backend is in use.
 * moby's "Udev Sync Supported" and "Library Version" rows are left out: no udev and no
 * libdevmapper are involved.
 */
import { humanSize } from '@graphdriver/core';
import type { DeviceSetStatus } from './deviceset.js';

export function statusRows(s: DeviceSetStatus): Array<[string, string]> {
  const rows: Array<[string, string]> = [
    ['Pool Name', s.poolName],
    ['Pool Backend', s.backend],
    ['Pool Blocksize', humanSize(s.sectorSize)],
    ['Base Device Size', humanSize(s.baseDeviceSize)],
    ['Backing Filesystem', s.baseDeviceFs],
  ];
  if (s.dataFile !== undefined) rows.push(['Data file', s.dataFile]);
  if (s.metadataFile !== undefined) rows.push(['Metadata file', s.metadataFile]);
  if (s.dataLoopback !== undefined) rows.push(['Data loop file', s.dataLoopback]);
  if (s.metadataLoopback !== undefined) rows.push(['Metadata loop file', s.metadataLoopback]);
  rows.push(
    ['Data Space Used', humanSize(s.data.used)],
    ['Data Space Total', humanSize(s.data.total)],
    ['Data Space Available', humanSize(s.data.available)],
    ['Metadata Space Used', humanSize(s.metadata.used)],
    ['Metadata Space Total', humanSize(s.metadata.total)],
    ['Metadata Space Available', humanSize(s.metadata.available)],
    ['Thin Pool Minimum Free Space', humanSize(s.minFreeSpace)],
    ['Deferred Removal Enabled', String(s.deferredRemoveEnabled)],
    ['Deferred Deletion Enabled', String(s.deferredDeleteEnabled)],
    ['Deferred Deleted Device Count', String(s.deferredDeletedDeviceCount)],
  );
  return rows;
}
