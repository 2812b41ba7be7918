/**
 * The UUID of the filesystem on a device or image file, read from its superblock (ext2/3/4, xfs,
 * btrfs: no child process, and it works on an image file that is not attached anywhere), with
 * blkid as the fallback for anything else.
 */
import { open } from 'node:fs/promises';
import { OperationFailedError } from '../errors.js';
import { runTool } from './tools.js';

/** Where each filesystem keeps its magic and UUID (offsets from the start of the device). */
const LAYOUTS: ReadonlyArray<{ fs: string; magicAt: number; magic: Buffer; uuidAt: number }> = [
  { fs: 'xfs', magicAt: 0, magic: Buffer.from('XFSB'), uuidAt: 32 },
  { fs: 'ext', magicAt: 1024 + 0x38, magic: Buffer.from([0x53, 0xef]), uuidAt: 1024 + 0x68 },
  { fs: 'btrfs', magicAt: 0x10000 + 0x40, magic: Buffer.from('_BHRfS_M'), uuidAt: 0x10000 + 0x20 },
];

function formatUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

async function readSuperblockUuid(device: string): Promise<string | undefined> {
  const fh = await open(device, 'r');
  try {
    const buf = Buffer.alloc(0x10000 + 4096);
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    for (const l of LAYOUTS) {
      if (bytesRead < l.uuidAt + 16 || bytesRead < l.magicAt + l.magic.length) continue;
      if (buf.subarray(l.magicAt, l.magicAt + l.magic.length).equals(l.magic)) return formatUuid(buf.subarray(l.uuidAt, l.uuidAt + 16));
    }
    return undefined;
  } finally {
    await fh.close();
  }
}

/** The filesystem UUID of `device` (lowercase, dashed), as blkid prints it. */
export async function fsUuid(device: string, opts: { signal?: AbortSignal } = {}): Promise<string> {
  const fromSuperblock = await readSuperblockUuid(device);
  if (fromSuperblock !== undefined) return fromSuperblock;
  // blkid exits 2 when it finds nothing it knows: an OperationFailedError from runTool
  const { stdout } = await runTool('blkid', ['-p', '-o', 'value', '-s', 'UUID', device], `reading the filesystem UUID of ${device}`, opts.signal);
  const uuid = stdout.trim();
  if (uuid === '') throw new OperationFailedError(`reading the filesystem UUID of ${device}`, undefined, new Error('no filesystem with a UUID found'));
  return uuid;
}
