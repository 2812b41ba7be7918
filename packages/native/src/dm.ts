/**
 * Device-mapper in TypeScript on top of one raw ioctl: the struct dm_ioctl encoder and decoder
 * (with dm_target_spec, dm_name_list and dm_target_msg payloads) and the calls a thin-pool driver
 * needs (create, load, suspend/resume, message, status, table, info, list, clear, remove).
 *
 * The layout below is the kernel ABI of <linux/dm-ioctl.h> (v4); the tests compare every offset,
 * size and ioctl number with dmAbi(), which the addon computes with sizeof/offsetof from the real
 * header. Requests say version 4.0.0: the kernel accepts any request whose minor is not above its
 * own, and features are asked for with flags, so 4.0.0 works on every v4 kernel.
 *
 * Lengths and offsets of targets are in 512-byte sectors, as in dmsetup tables. No udev cookies
 * are used: a caller that wants /dev/mapper/<name> creates the node from info().major/minor.
 */
import { binding } from './binding.js';

/** The ABI facts of <linux/dm-ioctl.h> as the C compiler sees them. */
export interface DmAbi {
  size: number;
  offsets: Record<string, number>;
  targetSpecSize: number;
  targetSpecOffsets: Record<string, number>;
  nameListSize: number;
  nameListOffsets: Record<string, number>;
  targetMsgSize: number;
  targetMsgOffsets: Record<string, number>;
  targetDepsSize: number;
  targetDepsOffsets: Record<string, number>;
  targetVersionsSize: number;
  targetVersionsOffsets: Record<string, number>;
  ioctls: Record<string, number>;
  flags: Record<string, number>;
  version: [number, number, number];
  nameLen: number;
  uuidLen: number;
  maxTypeName: number;
}

export const dmAbi: () => DmAbi = binding.dmAbi;

/** Opens /dev/mapper/control (O_RDWR|O_CLOEXEC). ENOENT or ENODEV where the kernel has no device-mapper. */
export const dmOpenControl: () => Promise<number> = binding.dmOpenControl;

/**
 * The raw ioctl on a struct dm_ioctl buffer (its data_size must not exceed buf.length). Resolves
 * to the kernel's answer; when the kernel said DM_BUFFER_FULL the request is re-sent in a larger
 * buffer first. Only device-mapper ioctl numbers are accepted.
 */
export const dmIoctl: (controlFd: number, command: number, buf: Uint8Array) => Promise<Buffer> = binding.dmIoctl;

// ---- the ABI -------------------------------------------------------------------------------

/** struct dm_ioctl field offsets (bytes). */
export const DM_IOCTL_LAYOUT = {
  size: 312,
  version: 0,
  data_size: 12,
  data_start: 16,
  target_count: 20,
  open_count: 24,
  flags: 28,
  event_nr: 32,
  padding: 36,
  dev: 40,
  name: 48,
  uuid: 176,
  data: 305,
} as const;

/** struct dm_target_spec field offsets; the params string follows the 40-byte struct. */
export const DM_TARGET_SPEC_LAYOUT = { size: 40, sector_start: 0, length: 8, status: 16, next: 20, target_type: 24 } as const;
export const DM_NAME_LIST_LAYOUT = { size: 16, dev: 0, next: 8, name: 12 } as const;
export const DM_TARGET_MSG_LAYOUT = { size: 8, sector: 0, message: 8 } as const;

export const DM_NAME_LEN = 128;
export const DM_UUID_LEN = 129;
export const DM_MAX_TYPE_NAME = 16;

export const DM_FLAGS = {
  READONLY: 1 << 0,
  SUSPEND: 1 << 1,
  PERSISTENT_DEV: 1 << 3,
  STATUS_TABLE: 1 << 4,
  ACTIVE_PRESENT: 1 << 5,
  INACTIVE_PRESENT: 1 << 6,
  BUFFER_FULL: 1 << 8,
  SKIP_BDGET: 1 << 9,
  SKIP_LOCKFS: 1 << 10,
  NOFLUSH: 1 << 11,
  QUERY_INACTIVE_TABLE: 1 << 12,
  UEVENT_GENERATED: 1 << 13,
  UUID: 1 << 14,
  SECURE_DATA: 1 << 15,
  DATA_OUT: 1 << 16,
  DEFERRED_REMOVE: 1 << 17,
  INTERNAL_SUSPEND: 1 << 18,
} as const;

const DM_NAME_LIST_FLAG_HAS_UUID = 1;

// _IOWR(0xfd, nr, struct dm_ioctl): direction read|write (3) << 30, size << 16, type << 8, nr.
const dmIowr = (nr: number): number => ((3 << 30) | (DM_IOCTL_LAYOUT.size << 16) | (0xfd << 8) | nr) >>> 0;

export const DM_IOCTLS = {
  VERSION: dmIowr(0),
  REMOVE_ALL: dmIowr(1),
  LIST_DEVICES: dmIowr(2),
  DEV_CREATE: dmIowr(3),
  DEV_REMOVE: dmIowr(4),
  DEV_RENAME: dmIowr(5),
  DEV_SUSPEND: dmIowr(6),
  DEV_STATUS: dmIowr(7),
  DEV_WAIT: dmIowr(8),
  TABLE_LOAD: dmIowr(9),
  TABLE_CLEAR: dmIowr(10),
  TABLE_DEPS: dmIowr(11),
  TABLE_STATUS: dmIowr(12),
  LIST_VERSIONS: dmIowr(13),
  TARGET_MSG: dmIowr(14),
  DEV_SET_GEOMETRY: dmIowr(15),
} as const;

/** Room for the kernel's answer when a request carries little data (grown on DM_BUFFER_FULL). */
const DEFAULT_BUFFER = 16 * 1024;

// ---- encoding -------------------------------------------------------------------------------

export interface DmIoctlRequest {
  name?: string;
  uuid?: string;
  flags?: number;
  /** Input event number (DEV_WAIT) or udev cookie. */
  eventNr?: number;
  targetCount?: number;
  /** Wanted device number (encoded as the kernel's huge_encode_dev) with DM_FLAGS.PERSISTENT_DEV. */
  dev?: { major: number; minor: number };
  /** Payload after the header (target specs, a target message, a new name...). */
  data?: Uint8Array;
  /** Total buffer size; default: header + data, at least 16 KiB so answers fit. */
  bufferSize?: number;
  /** Interface version of the request; default [4, 0, 0]. */
  version?: [number, number, number];
}

/** The kernel's new_encode_dev (the low 32 bits of huge_encode_dev). */
export function encodeDev(major: number, minor: number): number {
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

export function decodeDev(dev: number): { major: number; minor: number } {
  return { major: (dev & 0xfff00) >>> 8, minor: (dev & 0xff) | ((dev >>> 12) & 0xfff00) };
}

const align8 = (n: number): number => (n + 7) & ~7;

function writeCString(buf: Buffer, offset: number, value: string, room: number, what: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length >= room || bytes.includes(0)) {
    throw rangeError(`${what} must be at most ${room - 1} bytes without NUL, got ${bytes.length}`);
  }
  bytes.copy(buf, offset);
}

function rangeError(message: string): RangeError {
  const err = new RangeError(message) as RangeError & { code: string };
  err.code = 'ERR_OUT_OF_RANGE';
  return err;
}

/** A struct dm_ioctl request buffer: header, then `data` at data_start (312). */
export function encodeDmIoctl(req: DmIoctlRequest = {}): Buffer {
  const L = DM_IOCTL_LAYOUT;
  const dataLength = req.data?.length ?? 0;
  const dataStart = align8(L.size);
  const size = Math.max(req.bufferSize ?? 0, dataStart + dataLength, req.bufferSize === undefined ? DEFAULT_BUFFER : 0);
  const buf = Buffer.alloc(size);
  const [major, minor, patch] = req.version ?? [4, 0, 0];
  buf.writeUInt32LE(major, L.version);
  buf.writeUInt32LE(minor, L.version + 4);
  buf.writeUInt32LE(patch, L.version + 8);
  buf.writeUInt32LE(size, L.data_size);
  buf.writeUInt32LE(dataStart, L.data_start);
  buf.writeUInt32LE(req.targetCount ?? 0, L.target_count);
  buf.writeUInt32LE((req.flags ?? 0) >>> 0, L.flags);
  buf.writeUInt32LE((req.eventNr ?? 0) >>> 0, L.event_nr);
  if (req.dev) buf.writeBigUInt64LE(BigInt(encodeDev(req.dev.major, req.dev.minor)), L.dev);
  if (req.name !== undefined) writeCString(buf, L.name, req.name, DM_NAME_LEN, 'a device-mapper name');
  if (req.uuid !== undefined) writeCString(buf, L.uuid, req.uuid, DM_UUID_LEN, 'a device-mapper uuid');
  if (req.data) Buffer.from(req.data.buffer, req.data.byteOffset, dataLength).copy(buf, dataStart);
  return buf;
}

/** One line of a table: `start length type params`, in 512-byte sectors. */
export interface DmTarget {
  start: number;
  length: number;
  type: string;
  params: string;
}

/** Target specs for DM_TABLE_LOAD: each `next` is the distance from this spec to the next one. */
export function encodeTargets(targets: readonly DmTarget[]): Buffer {
  const T = DM_TARGET_SPEC_LAYOUT;
  const parts: Buffer[] = [];
  for (const t of targets) {
    const params = Buffer.from(t.params, 'utf8');
    if (params.includes(0)) throw rangeError('target params must not contain NUL');
    const size = align8(T.size + params.length + 1);
    const spec = Buffer.alloc(size);
    spec.writeBigUInt64LE(BigInt(t.start), T.sector_start);
    spec.writeBigUInt64LE(BigInt(t.length), T.length);
    spec.writeUInt32LE(size, T.next);
    writeCString(spec, T.target_type, t.type, DM_MAX_TYPE_NAME, 'a target type');
    params.copy(spec, T.size);
    parts.push(spec);
  }
  return Buffer.concat(parts);
}

/** struct dm_target_msg for DM_TARGET_MSG. */
export function encodeTargetMessage(sector: number, message: string): Buffer {
  const text = Buffer.from(message, 'utf8');
  const buf = Buffer.alloc(align8(DM_TARGET_MSG_LAYOUT.size + text.length + 1));
  buf.writeBigUInt64LE(BigInt(sector), DM_TARGET_MSG_LAYOUT.sector);
  text.copy(buf, DM_TARGET_MSG_LAYOUT.message);
  return buf;
}

// ---- decoding -------------------------------------------------------------------------------

export interface DmIoctlReply {
  version: [number, number, number];
  dataSize: number;
  dataStart: number;
  targetCount: number;
  openCount: number;
  flags: number;
  eventNr: number;
  major: number;
  minor: number;
  name: string;
  uuid: string;
  /** The payload: bytes data_start..data_size (empty when the kernel wrote none). */
  data: Buffer;
}

function readCString(buf: Buffer, offset: number, room: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end === -1 || end > offset + room ? offset + room : end);
}

export function decodeDmIoctl(buf: Buffer): DmIoctlReply {
  const L = DM_IOCTL_LAYOUT;
  if (buf.length < L.size) throw rangeError(`a dm_ioctl reply is at least ${L.size} bytes, got ${buf.length}`);
  const dataSize = buf.readUInt32LE(L.data_size);
  const dataStart = buf.readUInt32LE(L.data_start);
  const { major, minor } = decodeDev(Number(buf.readBigUInt64LE(L.dev) & 0xffffffffn));
  return {
    version: [buf.readUInt32LE(L.version), buf.readUInt32LE(L.version + 4), buf.readUInt32LE(L.version + 8)],
    dataSize,
    dataStart,
    targetCount: buf.readUInt32LE(L.target_count),
    openCount: buf.readInt32LE(L.open_count),
    flags: buf.readUInt32LE(L.flags),
    eventNr: buf.readUInt32LE(L.event_nr),
    major,
    minor,
    name: readCString(buf, L.name, DM_NAME_LEN),
    uuid: readCString(buf, L.uuid, DM_UUID_LEN),
    data: dataSize > dataStart ? buf.subarray(dataStart, Math.min(dataSize, buf.length)) : Buffer.alloc(0),
  };
}

/** Target specs of a DM_TABLE_STATUS answer: `next` counts from the first spec. */
export function decodeTargets(data: Buffer, count: number): DmTarget[] {
  const T = DM_TARGET_SPEC_LAYOUT;
  const out: DmTarget[] = [];
  let pos = 0;
  for (let i = 0; i < count; i++) {
    if (pos + T.size > data.length) throw rangeError(`target ${i} lies beyond the ${data.length}-byte payload`);
    out.push({
      start: Number(data.readBigUInt64LE(pos + T.sector_start)),
      length: Number(data.readBigUInt64LE(pos + T.length)),
      type: readCString(data, pos + T.target_type, DM_MAX_TYPE_NAME),
      params: readCString(data, pos + T.size, data.length - pos - T.size),
    });
    pos = data.readUInt32LE(pos + T.next);
  }
  return out;
}

export interface DmDeviceName {
  name: string;
  major: number;
  minor: number;
  /** Present on kernels with dm 4.37+. */
  eventNr?: number;
  uuid?: string;
}

/** dm_name_list records of DM_LIST_DEVICES; a first record with dev 0 means "no devices". */
export function decodeNameList(data: Buffer, version: readonly number[]): DmDeviceName[] {
  const N = DM_NAME_LIST_LAYOUT;
  const out: DmDeviceName[] = [];
  if (data.length < N.size || data.readBigUInt64LE(N.dev) === 0n) return out;
  const hasEventNr = (version[0] ?? 0) > 4 || ((version[0] ?? 0) === 4 && (version[1] ?? 0) >= 37);
  let pos = 0;
  for (;;) {
    const { major, minor } = decodeDev(Number(data.readBigUInt64LE(pos + N.dev) & 0xffffffffn));
    const nameEnd = data.indexOf(0, pos + N.name);
    const entry: DmDeviceName = { name: data.toString('utf8', pos + N.name, nameEnd), major, minor };
    const next = data.readUInt32LE(pos + N.next);
    const extra = align8(nameEnd + 1);
    const recordEnd = next === 0 ? data.length : pos + next;
    if (hasEventNr && extra + 8 <= recordEnd) {
      entry.eventNr = data.readUInt32LE(extra);
      if (data.readUInt32LE(extra + 4) & DM_NAME_LIST_FLAG_HAS_UUID) entry.uuid = readCString(data, extra + 8, DM_UUID_LEN);
    }
    out.push(entry);
    if (next === 0) return out;
    pos += next;
  }
}

// ---- the calls ------------------------------------------------------------------------------

export interface DmInfo {
  exists: boolean;
  /** Open count of the device. */
  open: number;
  suspended: boolean;
  readOnly: boolean;
  liveTable: boolean;
  inactiveTable: boolean;
  deferredRemove: boolean;
  major: number;
  minor: number;
  eventNr: number;
  targetCount: number;
  name: string;
  uuid: string;
}

async function call(fd: number, command: number, req: DmIoctlRequest): Promise<DmIoctlReply> {
  return decodeDmIoctl(await dmIoctl(fd, command, encodeDmIoctl(req)));
}

function toInfo(r: DmIoctlReply): DmInfo {
  return {
    exists: true,
    open: r.openCount,
    suspended: (r.flags & DM_FLAGS.SUSPEND) !== 0,
    readOnly: (r.flags & DM_FLAGS.READONLY) !== 0,
    liveTable: (r.flags & DM_FLAGS.ACTIVE_PRESENT) !== 0,
    inactiveTable: (r.flags & DM_FLAGS.INACTIVE_PRESENT) !== 0,
    deferredRemove: (r.flags & DM_FLAGS.DEFERRED_REMOVE) !== 0,
    major: r.major,
    minor: r.minor,
    eventNr: r.eventNr,
    targetCount: r.targetCount,
    name: r.name,
    uuid: r.uuid,
  };
}

const noDevice = (name: string): DmInfo => ({
  exists: false, open: 0, suspended: false, readOnly: false, liveTable: false, inactiveTable: false,
  deferredRemove: false, major: 0, minor: 0, eventNr: 0, targetCount: 0, name, uuid: '',
});

function statusTargets(r: DmIoctlReply): { targets: DmTarget[] } {
  return { targets: decodeTargets(r.data, r.targetCount) };
}

/** The high-level calls; `fd` is the control fd from dmOpenControl(). */
export const dm = {
  /** The kernel's dm interface version. */
  async version(fd: number): Promise<[number, number, number]> {
    return (await call(fd, DM_IOCTLS.VERSION, {})).version;
  },
  /** DM_DEV_CREATE: a device with no table yet (load, then resume to activate). */
  async create(fd: number, name: string, opts: { uuid?: string; readOnly?: boolean } = {}): Promise<DmInfo> {
    const req: DmIoctlRequest = { name, flags: opts.readOnly ? DM_FLAGS.READONLY : 0 };
    if (opts.uuid !== undefined) req.uuid = opts.uuid;
    return toInfo(await call(fd, DM_IOCTLS.DEV_CREATE, req));
  },
  /** DM_DEV_REMOVE; `deferred` removes it when its last opener closes (EBUSY otherwise while open). */
  async remove(fd: number, name: string, opts: { deferred?: boolean } = {}): Promise<void> {
    await call(fd, DM_IOCTLS.DEV_REMOVE, { name, flags: opts.deferred ? DM_FLAGS.DEFERRED_REMOVE : 0 });
  },
  /** DM_TABLE_LOAD into the inactive slot; resume() makes it live. */
  async load(fd: number, name: string, targets: readonly DmTarget[], opts: { readOnly?: boolean } = {}): Promise<void> {
    await call(fd, DM_IOCTLS.TABLE_LOAD, {
      name,
      targetCount: targets.length,
      flags: opts.readOnly ? DM_FLAGS.READONLY : 0,
      data: encodeTargets(targets),
    });
  },
  /** DM_DEV_SUSPEND with SUSPEND: I/O waits until resume. */
  async suspend(fd: number, name: string, opts: { noFlush?: boolean; skipLockfs?: boolean } = {}): Promise<void> {
    const flags = DM_FLAGS.SUSPEND | (opts.noFlush ? DM_FLAGS.NOFLUSH : 0) | (opts.skipLockfs ? DM_FLAGS.SKIP_LOCKFS : 0);
    await call(fd, DM_IOCTLS.DEV_SUSPEND, { name, flags });
  },
  /** DM_DEV_SUSPEND without SUSPEND: swaps in a loaded table and resumes I/O. */
  async resume(fd: number, name: string): Promise<void> {
    await call(fd, DM_IOCTLS.DEV_SUSPEND, { name });
  },
  /** DM_TARGET_MSG (e.g. thin-pool "create_thin 0"); resolves to the target's answer text, '' if none. */
  async message(fd: number, name: string, sector: number, message: string): Promise<string> {
    const r = await call(fd, DM_IOCTLS.TARGET_MSG, { name, data: encodeTargetMessage(sector, message) });
    return r.flags & DM_FLAGS.DATA_OUT ? readCString(r.data, 0, r.data.length) : '';
  },
  /** DM_TABLE_STATUS: each target's status line. */
  async status(fd: number, name: string): Promise<{ targets: DmTarget[] }> {
    return statusTargets(await call(fd, DM_IOCTLS.TABLE_STATUS, { name }));
  },
  /** DM_TABLE_STATUS with STATUS_TABLE: the live table. */
  async table(fd: number, name: string): Promise<{ targets: DmTarget[] }> {
    return statusTargets(await call(fd, DM_IOCTLS.TABLE_STATUS, { name, flags: DM_FLAGS.STATUS_TABLE }));
  },
  /** DM_DEV_STATUS; `exists: false` when there is no such device (ENXIO). */
  async info(fd: number, name: string): Promise<DmInfo> {
    try {
      return toInfo(await call(fd, DM_IOCTLS.DEV_STATUS, { name }));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENXIO') return noDevice(name);
      throw err;
    }
  },
  /** DM_LIST_DEVICES (asking for uuids too: DM_UUID_FLAG, honoured by kernels with dm 4.46+). */
  async listDevices(fd: number): Promise<DmDeviceName[]> {
    const r = await call(fd, DM_IOCTLS.LIST_DEVICES, { flags: DM_FLAGS.UUID });
    return decodeNameList(r.data, r.version);
  },
  /** DM_TABLE_CLEAR: drops the inactive (loaded, not yet resumed) table. */
  async clear(fd: number, name: string): Promise<void> {
    await call(fd, DM_IOCTLS.TABLE_CLEAR, { name });
  },
} as const;
