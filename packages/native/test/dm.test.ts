/**
 * Device-mapper. Everywhere: the TypeScript ABI (offsets, sizes, ioctl numbers, flags) against
 * dmAbi() from the C header, encoder/decoder round trips, a hand-built thin-pool status reply,
 * and the probe saying ENOENT/ENODEV where the kernel has no dm. With dm (the qemu lane, which
 * this file re-runs itself in when the host lacks it): a linear device over a loop device whose
 * bytes land where the table says, and a thin pool with messages, status, table and removal.
 */
import { closeSync, fsyncSync, openSync, readSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DM_FLAGS, DM_IOCTLS, DM_IOCTL_LAYOUT, DM_MAX_TYPE_NAME, DM_NAME_LEN, DM_NAME_LIST_LAYOUT, DM_TARGET_MSG_LAYOUT,
  DM_TARGET_SPEC_LAYOUT, DM_UUID_LEN, LO_FLAGS, O,
  decodeDmIoctl, decodeNameList, decodeTargets, dm, dmAbi, dmIoctl, dmOpenControl, encodeDev, encodeDmIoctl,
  encodeTargetMessage, encodeTargets, isNativeError, type DmTarget,
} from '../src/index.js';
import { attachLoop, type AttachedLoop } from './helpers/loop.js';
import { withTmpDir } from './helpers/tmp.js';
import { inVmLane, runUvuInVmLane } from '@graphdriver/testkit';

const abi = dmAbi();

test('the TypeScript layout of struct dm_ioctl and friends is the C header\'s', () => {
  const { size, ...offsets } = DM_IOCTL_LAYOUT;
  assert.is(size, abi.size);
  assert.equal(offsets, abi.offsets);
  const { size: specSize, ...specOffsets } = DM_TARGET_SPEC_LAYOUT;
  assert.is(specSize, abi.targetSpecSize);
  assert.equal(specOffsets, abi.targetSpecOffsets);
  const { size: nlSize, ...nlOffsets } = DM_NAME_LIST_LAYOUT;
  assert.is(nlSize, abi.nameListSize);
  assert.equal(nlOffsets, abi.nameListOffsets);
  const { size: msgSize, ...msgOffsets } = DM_TARGET_MSG_LAYOUT;
  assert.is(msgSize, abi.targetMsgSize);
  assert.equal(msgOffsets, abi.targetMsgOffsets);
  assert.equal({ ...DM_IOCTLS }, abi.ioctls);
  const { NAME_LIST_HAS_UUID, NAME_LIST_DOESNT_HAVE_UUID, ...flags } = abi.flags;
  assert.equal({ ...DM_FLAGS }, flags);
  assert.equal([NAME_LIST_HAS_UUID, NAME_LIST_DOESNT_HAVE_UUID], [1, 2]);
  assert.equal([DM_NAME_LEN, DM_UUID_LEN, DM_MAX_TYPE_NAME], [abi.nameLen, abi.uuidLen, abi.maxTypeName]);
  assert.is(abi.version[0], 4);
});

test('encodeDmIoctl puts each field at its C offset, and decodeDmIoctl reads them back', () => {
  const data = Buffer.from('payload\0');
  const buf = encodeDmIoctl({
    name: 'pool-1', uuid: 'gd-uuid-1', flags: DM_FLAGS.READONLY | DM_FLAGS.DEFERRED_REMOVE, eventNr: 7, targetCount: 3,
    dev: { major: 253, minor: 300 }, data,
  });
  const o = abi.offsets as Record<string, number>;
  assert.is(buf.length, 16384, 'room for the answer');
  assert.equal([buf.readUInt32LE(o.version!), buf.readUInt32LE(o.version! + 4), buf.readUInt32LE(o.version! + 8)], [4, 0, 0]);
  assert.is(buf.readUInt32LE(o.data_size!), buf.length);
  assert.is(buf.readUInt32LE(o.data_start!), abi.size);
  assert.is(buf.readUInt32LE(o.target_count!), 3);
  assert.is(buf.readUInt32LE(o.flags!), DM_FLAGS.READONLY | DM_FLAGS.DEFERRED_REMOVE);
  assert.is(buf.readUInt32LE(o.event_nr!), 7);
  // huge_encode_dev(MKDEV(253, 300)): minor's low byte, major, then minor's high bits
  assert.is(buf.readBigUInt64LE(o.dev!), BigInt((300 & 0xff) | (253 << 8) | ((300 & ~0xff) << 12)));
  assert.is(buf.toString('utf8', o.name!, o.name! + 6), 'pool-1');
  assert.is(buf[o.name! + 6], 0);
  assert.is(buf.toString('utf8', o.uuid!, o.uuid! + 9), 'gd-uuid-1');
  assert.ok(buf.subarray(abi.size, abi.size + data.length).equals(data));

  // the kernel writes back data_size = end of its answer
  buf.writeUInt32LE(abi.size + data.length, o.data_size!);
  buf.writeInt32LE(2, o.open_count!);
  const r = decodeDmIoctl(buf);
  assert.equal(
    [r.name, r.uuid, r.flags, r.eventNr, r.targetCount, r.major, r.minor, r.openCount, r.dataStart, r.dataSize],
    ['pool-1', 'gd-uuid-1', DM_FLAGS.READONLY | DM_FLAGS.DEFERRED_REMOVE, 7, 3, 253, 300, 2, abi.size, abi.size + data.length],
  );
  assert.ok(r.data.equals(data));
  assert.is(encodeDev(7, 0), 0x700);
});

test('names and uuids that do not fit (or hold NUL) are RangeErrors, not truncations', () => {
  assert.throws(() => encodeDmIoctl({ name: 'x'.repeat(128) }), (e: Error) => e instanceof RangeError);
  encodeDmIoctl({ name: 'x'.repeat(127) });
  assert.throws(() => encodeDmIoctl({ uuid: 'u'.repeat(129) }), (e: Error) => e instanceof RangeError);
  assert.throws(() => encodeDmIoctl({ name: 'a\0b' }), (e: Error) => e instanceof RangeError);
  assert.throws(() => encodeTargets([{ start: 0, length: 1, type: 'x'.repeat(16), params: '' }]), (e: Error) => e instanceof RangeError);
});

test('encodeTargets lays out dm_target_spec + params, 8-aligned, next = distance to the following spec', () => {
  const targets: DmTarget[] = [
    { start: 0, length: 2048, type: 'linear', params: '7:0 2048' },
    { start: 2048, length: 4096, type: 'thin', params: '253:0 1' },
  ];
  const buf = encodeTargets(targets);
  const s = abi.targetSpecOffsets as Record<string, number>;
  const first = 40 + 8 + 1; // spec + "7:0 2048" + NUL
  const firstSize = (first + 7) & ~7;
  assert.is(buf.readUInt32LE(s.next!), firstSize);
  assert.is(buf.readBigUInt64LE(s.sector_start!), 0n);
  assert.is(buf.readBigUInt64LE(s.length!), 2048n);
  assert.is(buf.toString('utf8', s.target_type!, s.target_type! + 6), 'linear');
  assert.is(buf.toString('utf8', abi.targetSpecSize, abi.targetSpecSize + 8), '7:0 2048');
  assert.is(buf[abi.targetSpecSize + 8], 0);
  assert.is(buf.readBigUInt64LE(firstSize + s.sector_start!), 2048n);
  assert.is(buf.toString('utf8', firstSize + s.target_type!, firstSize + s.target_type! + 4), 'thin');
  assert.is(buf.length % 8, 0);

  const msg = encodeTargetMessage(5, 'create_thin 0');
  assert.is(msg.readBigUInt64LE(abi.targetMsgOffsets.sector!), 5n);
  assert.is(msg.toString('utf8', abi.targetMsgOffsets.message!, abi.targetMsgOffsets.message! + 13), 'create_thin 0');
  assert.is(msg[abi.targetMsgOffsets.message! + 13], 0);
});

/** A DM_TABLE_STATUS answer as dm-ioctl.c's retrieve_status writes it: `next` counts from the first spec. */
function statusReply(targets: DmTarget[], version: [number, number, number] = [4, 47, 0]): Buffer {
  const specs: Buffer[] = [];
  let offset = 0;
  for (const t of targets) {
    const used = 40 + Buffer.byteLength(t.params) + 1;
    const spec = Buffer.alloc((used + 7) & ~7, 0xee); // padding bytes left dirty, as the kernel does not clear them
    spec.writeBigUInt64LE(BigInt(t.start), 0);
    spec.writeBigUInt64LE(BigInt(t.length), 8);
    spec.writeInt32LE(0, 16);
    offset += spec.length;
    spec.writeUInt32LE(offset, 20);
    spec.fill(0, 24, 40);
    spec.write(t.type, 24);
    spec.write(t.params, 40);
    spec[used - 1] = 0;
    specs.push(spec);
  }
  const data = Buffer.concat(specs);
  const buf = Buffer.alloc(16384);
  buf.writeUInt32LE(version[0], 0);
  buf.writeUInt32LE(version[1], 4);
  buf.writeUInt32LE(version[2], 8);
  buf.writeUInt32LE(312 + data.length, 12);
  buf.writeUInt32LE(312, 16);
  buf.writeUInt32LE(targets.length, 20);
  buf.writeUInt32LE(DM_FLAGS.ACTIVE_PRESENT, 28);
  buf.writeBigUInt64LE(BigInt(encodeDev(253, 2)), 40);
  buf.write('docker-253:1-1234-pool', 48);
  data.copy(buf, 312);
  return buf;
}

test('a realistic thin-pool status reply decodes to its status line', () => {
  const line = '1 211/4161600 3721/1638400 - rw discard_passdown queue_if_no_space - 1024';
  const r = decodeDmIoctl(statusReply([{ start: 0, length: 209715200, type: 'thin-pool', params: line }]));
  assert.is(r.name, 'docker-253:1-1234-pool');
  assert.equal([r.major, r.minor], [253, 2]);
  assert.equal(decodeTargets(r.data, r.targetCount), [{ start: 0, length: 209715200, type: 'thin-pool', params: line }]);
  // three targets: each `next` is counted from the first spec, not from the previous one
  const three: DmTarget[] = [
    { start: 0, length: 100, type: 'linear', params: '' },
    { start: 100, length: 50, type: 'linear', params: '8:16 ' + '9'.repeat(30) },
    { start: 150, length: 2 ** 40, type: 'thin', params: '0 -' },
  ];
  const r3 = decodeDmIoctl(statusReply(three));
  assert.equal(decodeTargets(r3.data, r3.targetCount), three);
});

test('a DM_LIST_DEVICES reply decodes names, device numbers, event numbers and uuids', () => {
  const records: Buffer[] = [];
  const devices = [
    { name: 'pool', major: 253, minor: 0, eventNr: 3, uuid: 'gd-pool' },
    { name: 'thin-with-a-longer-name', major: 253, minor: 1, eventNr: 0, uuid: undefined },
  ];
  for (const d of devices) {
    const nameEnd = 12 + d.name.length + 1;
    const extra = (nameEnd + 7) & ~7;
    const size = (extra + 8 + (d.uuid ? d.uuid.length + 1 : 0) + 7) & ~7;
    const rec = Buffer.alloc(size);
    rec.writeBigUInt64LE(BigInt(encodeDev(d.major, d.minor)), 0);
    rec.write(d.name, 12);
    rec.writeUInt32LE(d.eventNr, extra);
    rec.writeUInt32LE(d.uuid ? 1 : 2, extra + 4);
    if (d.uuid) rec.write(d.uuid, extra + 8);
    records.push(rec);
  }
  records[0]!.writeUInt32LE(records[0]!.length, 8); // next, from the start of this record; 0 on the last
  const data = Buffer.concat(records);
  assert.equal(decodeNameList(data, [4, 47, 0]), [
    { name: 'pool', major: 253, minor: 0, eventNr: 3, uuid: 'gd-pool' },
    { name: 'thin-with-a-longer-name', major: 253, minor: 1, eventNr: 0 },
  ]);
  assert.equal(decodeNameList(data, [4, 30, 0]).map((d) => Object.keys(d).length), [3, 3], 'old kernels: no event_nr');
  assert.equal(decodeNameList(Buffer.alloc(16), [4, 47, 0]), [], 'dev 0: no devices');
});

test('dmIoctl refuses non-dm ioctl numbers and a data_size beyond the buffer', async () => {
  for (const [command, buf] of [
    [0x5401 /* TCGETS */, encodeDmIoctl({})],
    [DM_IOCTLS.VERSION, encodeDmIoctl({}).subarray(0, 100)],
    [DM_IOCTLS.VERSION, encodeDmIoctl({ bufferSize: 400 }).subarray(0, 399)],
  ] as const) {
    try {
      await dmIoctl(0, command, buf);
      assert.unreachable('accepted');
    } catch (err) {
      assert.instance(err, RangeError);
    }
  }
});

// ---- against the kernel ---------------------------------------------------------------------

let control: number | undefined;
let probeError: unknown;
try {
  control = await dmOpenControl();
} catch (err) {
  probeError = err;
}

if (control === undefined) {
  test('without device-mapper the probe fails with ENOENT or ENODEV on /dev/mapper/control', () => {
    assert.ok(isNativeError(probeError), String(probeError));
    assert.ok(['ENOENT', 'ENODEV'].includes(probeError.code), probeError.code);
    assert.is(probeError.syscall, 'open');
    assert.is(probeError.path, '/dev/mapper/control');
  });
  if (inVmLane) {
    test('the qemu lane kernel has device-mapper', () => assert.unreachable(String(probeError)));
  } else {
    test('device-mapper for real inside the qemu lane (this kernel has none)', () =>
      runUvuInVmLane(fileURLToPath(new URL('..', import.meta.url)), 'dm\\.test\\.ts$', 9));
  }
} else {
  const fd = control;
  const prefix = `gd-native-test-${process.pid}`;

  /** Removes our devices (thin before pool) and detaches the loops, also after a failure. */
  async function cleanup(names: string[], loops: AttachedLoop[]): Promise<void> {
    for (const name of names) {
      if ((await dm.info(fd, name)).exists) await dm.remove(fd, name);
    }
    for (const loop of loops) closeSync(loop.fd); // AUTOCLEAR
  }

  test('dm.version and a linear device over a loop device: bytes land at the mapped offset', () =>
    withTmpDir('dm', async (dir) => {
      const version = await dm.version(fd);
      assert.is(version[0], 4);
      const name = `${prefix}-linear`;
      writeFileSync(join(dir, 'backing'), Buffer.alloc(8 << 20));
      const loop = await attachLoop(join(dir, 'backing'), { flags: LO_FLAGS.AUTOCLEAR }, O.RDWR);
      try {
        const created = await dm.create(fd, name, { uuid: `${name}-uuid` });
        assert.ok(created.exists);
        assert.not.ok(created.liveTable);
        await dm.load(fd, name, [{ start: 0, length: 4096, type: 'linear', params: `7:${loop.n} 2048` }]);
        assert.ok((await dm.info(fd, name)).inactiveTable);
        await dm.resume(fd, name);
        const info = await dm.info(fd, name);
        assert.ok(info.exists && info.liveTable && !info.suspended);
        assert.equal([info.major, info.uuid, info.targetCount], [created.major, `${name}-uuid`, 1]);
        assert.equal((await dm.table(fd, name)).targets, [{ start: 0, length: 4096, type: 'linear', params: `7:${loop.n} 2048` }]);
        assert.equal((await dm.status(fd, name)).targets, [{ start: 0, length: 4096, type: 'linear', params: '' }]);
        const listed = (await dm.listDevices(fd)).find((d) => d.name === name);
        assert.equal(listed && [listed.major, listed.minor, listed.uuid], [info.major, info.minor, `${name}-uuid`]);

        const dev = openSync(`/dev/dm-${info.minor}`, O.RDWR | O.CLOEXEC);
        try {
          const block = Buffer.alloc(4096, 0x41);
          writeSync(dev, block, 0, 4096, 0);
          fsyncSync(dev);
        } finally {
          closeSync(dev);
        }
        const check = Buffer.alloc(4096);
        const back = openSync(join(dir, 'backing'), 'r');
        readSync(back, check, 0, 4096, 2048 * 512);
        closeSync(back);
        assert.ok(check.equals(Buffer.alloc(4096, 0x41)), 'written 1 MiB into the backing file');

        await dm.suspend(fd, name);
        assert.ok((await dm.info(fd, name)).suspended);
        await dm.load(fd, name, [{ start: 0, length: 2048, type: 'zero', params: '' }]);
        await dm.clear(fd, name);
        const afterClear = await dm.info(fd, name);
        assert.not.ok(afterClear.inactiveTable, 'clear dropped the loaded table');
        await dm.resume(fd, name);
        assert.not.ok((await dm.info(fd, name)).suspended);

        try {
          await dm.create(fd, name);
          assert.unreachable('created twice');
        } catch (err) {
          assert.ok(isNativeError(err) && err.code === 'EBUSY' && err.syscall === 'ioctl(DM_DEV_CREATE)', String(err));
        }
        await dm.remove(fd, name);
        assert.not.ok((await dm.info(fd, name)).exists);
        try {
          await dm.remove(fd, name);
          assert.unreachable('removed twice');
        } catch (err) {
          assert.ok(isNativeError(err) && err.code === 'ENXIO', String(err));
        }
      } finally {
        await cleanup([name], [loop]);
      }
    }));

  test('a thin pool: create_thin by message, a thin device taking writes, status, transaction id, delete', () =>
    withTmpDir('dm', async (dir) => {
      const pool = `${prefix}-pool`;
      const thin = `${prefix}-thin`;
      writeFileSync(join(dir, 'meta'), Buffer.alloc(0));
      writeFileSync(join(dir, 'data'), Buffer.alloc(0));
      truncateSync(join(dir, 'meta'), 16 << 20);
      truncateSync(join(dir, 'data'), 64 << 20);
      const loops: AttachedLoop[] = [];
      try {
        loops.push(await attachLoop(join(dir, 'meta'), { flags: LO_FLAGS.AUTOCLEAR }, O.RDWR));
        loops.push(await attachLoop(join(dir, 'data'), { flags: LO_FLAGS.AUTOCLEAR }, O.RDWR));
        const [meta, data] = loops as [AttachedLoop, AttachedLoop];
        const poolParams = `7:${meta.n} 7:${data.n} 128 0 1 skip_block_zeroing`;
        const poolInfo = await dm.create(fd, pool, { uuid: `${pool}-uuid` });
        await dm.load(fd, pool, [{ start: 0, length: (64 << 20) / 512, type: 'thin-pool', params: poolParams }]);
        await dm.resume(fd, pool);
        // thin-pool prints its table with a trailing space; the decoder gives the kernel's text as is
        assert.is((await dm.table(fd, pool)).targets[0]?.params.trimEnd(), poolParams);
        let [status] = (await dm.status(fd, pool)).targets;
        assert.is(status?.type, 'thin-pool');
        assert.match(status?.params ?? '', /^0 \d+\/\d+ 0\/1024 - rw /, 'transaction 0, no data used');

        assert.is(await dm.message(fd, pool, 0, 'create_thin 0'), '');
        await dm.message(fd, pool, 0, 'set_transaction_id 0 1');
        await dm.create(fd, thin);
        await dm.load(fd, thin, [{ start: 0, length: 20480, type: 'thin', params: `253:${poolInfo.minor} 0` }]);
        await dm.resume(fd, thin);
        const thinInfo = await dm.info(fd, thin);
        const dev = openSync(`/dev/dm-${thinInfo.minor}`, O.RDWR | O.CLOEXEC);
        try {
          writeSync(dev, Buffer.alloc(1 << 20, 0x5a), 0, 1 << 20, 0);
          fsyncSync(dev);
        } finally {
          closeSync(dev);
        }
        [status] = (await dm.status(fd, pool)).targets;
        const used = /^1 \d+\/\d+ (\d+)\/1024 /.exec(status?.params ?? '');
        assert.ok(used, `transaction 1 in: ${status?.params}`);
        assert.is(Number(used[1]), 16, '1 MiB = 16 blocks of 64 KiB');
        assert.match((await dm.status(fd, thin)).targets[0]?.params ?? '', /^2048 2047$/, 'thin status: mapped sectors, highest');

        try {
          await dm.message(fd, pool, 0, 'no_such_message');
          assert.unreachable('a bad message was accepted');
        } catch (err) {
          assert.ok(isNativeError(err) && err.code === 'EINVAL' && err.syscall === 'ioctl(DM_TARGET_MSG)', String(err));
        }
        await dm.remove(fd, thin);
        await dm.message(fd, pool, 0, 'delete 0');
        [status] = (await dm.status(fd, pool)).targets;
        assert.match(status?.params ?? '', /^1 \d+\/\d+ 0\/1024 /, 'delete freed the data blocks');
        await dm.remove(fd, pool, { deferred: true });
        assert.not.ok((await dm.info(fd, pool)).exists, 'unused: removed at once');
      } finally {
        await cleanup([thin, pool], loops);
      }
    }));

  test.after(() => closeSync(fd));
}

test.run();
