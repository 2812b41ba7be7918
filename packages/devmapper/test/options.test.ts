/**
 * The dm.* options (moby's keys, defaults and cross-key rules, refusals that name the key), the
 * names the DeviceSet gives devices and files, the thin-pool status parser and the device id space.
 * No kernel needed.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidOptionError } from '@graphdriver/core';
import { deviceKey, deviceName, parsePoolStatus, resolveDmOptions } from '../src/index.js';
import { DeviceIdMap } from '../src/device-ids.js';
import { hashOfMetadataFile } from '../src/naming.js';

const KiB = 1024;
const GiB = 1024 ** 3;

function refused(input: string[] | Record<string, string>, key: string, message: RegExp): void {
  try {
    resolveDmOptions(input);
  } catch (err) {
    assert.instance(err, InvalidOptionError);
    assert.is((err as InvalidOptionError).key, key, `the error names ${key}`);
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable(`${JSON.stringify(input)} was accepted`);
}

test("moby's defaults", () => {
  const s = resolveDmOptions([]);
  assert.equal(
    [s.baseSize, s.baseSizeGiven, s.loopDataSize, s.loopMetadataSize, s.blockSize, s.minFreeSpacePercent, s.fs],
    [10 * GiB, false, 100 * GiB, 2 * GiB, 64 * KiB, 10, undefined],
  );
  assert.equal([s.deferredRemoval, s.deferredDeletion, s.blkDiscard, s.backend], [true, true, true, 'auto']);
  assert.equal([s.mkfsArgs, s.mountOptions, s.thinPoolDevice, s.xfsNospaceMaxRetries], [[], [], undefined, undefined]);
});

test('strings and objects, repeated keys, values kept whole', () => {
  const s = resolveDmOptions([
    'dm.basesize=20G',
    'DM.FS=xfs',
    'dm.mkfsarg=-E lazy_itable_init=1,nodiscard',
    'dm.mkfsarg=-K',
    'dm.mountopt=nodev',
    'dm.mountopt=noatime,nosuid',
    'dm.blocksize=512K',
    'dm.min_free_space=0%',
    'dm.xfs_nospace_max_retries=0',
  ]);
  assert.equal([s.baseSize, s.baseSizeGiven, s.fs, s.blockSize, s.minFreeSpacePercent, s.xfsNospaceMaxRetries], [20 * GiB, true, 'xfs', 512 * KiB, 0, 0]);
  assert.equal(s.mkfsArgs, ['-E lazy_itable_init=1,nodiscard', '-K'], 'each dm.mkfsarg is one argument, commas and all');
  assert.equal(s.mountOptions, ['nodev', 'noatime', 'nosuid']);
  const o = resolveDmOptions({ basesize: '1G', use_deferred_removal: 'false', loopdatasize: 5 * GiB });
  assert.equal([o.baseSize, o.loopDataSize, o.deferredRemoval, o.deferredDeletion], [GiB, 5 * GiB, false, false], 'deletion follows removal unless given');
});

test('devices: /dev/mapper/ is taken off a pool name; discards off on devices unless asked for', () => {
  const pool = resolveDmOptions(['dm.thinpooldev=/dev/mapper/docker-thinpool']);
  assert.equal([pool.thinPoolDevice, pool.blkDiscard], ['docker-thinpool', false]);
  assert.is(resolveDmOptions(['dm.thinpooldev=p', 'dm.blkdiscard=true']).blkDiscard, true);
  const devs = resolveDmOptions(['dm.datadev=/dev/sdb', 'dm.metadatadev=/dev/sdc']);
  assert.equal([devs.dataDevice, devs.metadataDevice, devs.blkDiscard], ['/dev/sdb', '/dev/sdc', false]);
  assert.equal(resolveDmOptions(['dm.reflink_pooldir=/srv/pool']).backend, 'reflink', 'a reflink pool directory means the reflink backend');
});

test('refusals name the key and say why', () => {
  refused(['dm.nope=1'], 'dm.nope', /unknown option "dm.nope"/);
  refused(['overlay.size=1G'], 'overlay.size', /unknown option/);
  refused(['dm.basesize=big'], 'dm.basesize', /expected a size/);
  refused(['dm.fs=btrfs'], 'dm.fs', /expected one of "ext4", "xfs"/);
  refused(['dm.min_free_space=10'], 'dm.min_free_space', /requires a percentage with a % suffix/);
  refused(['dm.min_free_space=100%'], 'dm.min_free_space', /below 100%/);
  refused(['dm.blocksize=96K'], 'dm.blocksize', /not a multiple of 64K/);
  refused(['dm.blocksize=32K'], 'dm.blocksize', /at least 65536/);
  refused(['dm.use_deferred_removal=false', 'dm.use_deferred_deletion=true'], 'dm.use_deferred_deletion', /deferred removal is not enabled/);
  refused(['dm.datadev=/dev/sdb'], 'dm.metadatadev', /go together/);
  refused(['dm.thinpooldev=p', 'dm.datadev=/dev/a', 'dm.metadatadev=/dev/b'], 'dm.thinpooldev', /one or the other/);
  refused(['dm.thinpooldev=p', 'dm.backend=reflink'], 'dm.thinpooldev', /cannot be used with the reflink pool/);
  refused(['dm.reflink_pooldir=/srv/p', 'dm.backend=thin'], 'dm.reflink_pooldir', /cannot be used with dm.backend=thin/);
  refused(['dm.reflink_pooldir=relative'], 'dm.reflink_pooldir', /not an absolute path/);
  refused(['dm.directlvm_device=/dev/xvdf'], 'dm.directlvm_device', /direct-lvm.*dm\.thinpooldev/);
  refused(['dm.thinp_percent=95'], 'dm.thinp_percent', /not supported/);
  refused(['dm.xfs_nospace_max_retries=-1'], 'dm.xfs_nospace_max_retries', /at least 0/);
});

test('moby keys that have nothing to do here are taken without effect', () => {
  const s = resolveDmOptions(['dm.override_udev_sync_check=true', 'dm.libdm_log_level=7']);
  assert.is(s.baseSize, 10 * GiB);
  refused(['dm.libdm_log_level=9'], 'dm.libdm_log_level', /at most 7/);
});

test('device names and metadata file names: moby\'s, with the ids moby never had escaped', () => {
  const prefix = 'docker-254:0-1234';
  assert.is(deviceName(prefix, ''), `${prefix}-base`);
  assert.is(deviceName(prefix, 'abc'), `${prefix}-abc`);
  for (const clash of ['base', 'deviceset-metadata', 'transaction-metadata', 'x.migrated']) {
    assert.is(deviceKey(clash), `_${clash}`);
    assert.is(hashOfMetadataFile(deviceKey(clash)), clash);
  }
  assert.is(hashOfMetadataFile('base'), '');
  assert.is(hashOfMetadataFile('deviceset-metadata'), undefined);
  assert.is(hashOfMetadataFile('.tmp1234'), undefined);
  assert.is(hashOfMetadataFile('json.migrated'), undefined);
  const long = deviceName(prefix, 'x'.repeat(128));
  assert.match(long, /^docker-254:0-1234-sha256-[0-9a-f]{64}$/);
  assert.ok(Buffer.byteLength(long) <= 127);
  assert.is.not(deviceName(prefix, 'y'.repeat(128)), long);
});

test('thin-pool status lines', () => {
  assert.equal(parsePoolStatus('1 211/4161600 3721/1638400 - rw discard_passdown queue_if_no_space - 1024 '), {
    transactionId: 1,
    metadataUsed: 211,
    metadataTotal: 4161600,
    dataUsed: 3721,
    dataTotal: 1638400,
  });
  assert.throws(() => parsePoolStatus('Fail'), /cannot read the thin-pool status/);
});

test('device ids: 24 bits, the cursor moves on and wraps, used ids are skipped', () => {
  const ids = new DeviceIdMap();
  assert.is(ids.allocate(), 1, 'moby increments before use: the first id is 1');
  ids.markUsed(2);
  assert.is(ids.allocate(), 3);
  ids.markFree(1);
  assert.is(ids.allocate(), 4, 'a freed id is not handed out again at once');
  ids.next = 0xfffffe;
  assert.is(ids.allocate(), 0xffffff);
  assert.is(ids.allocate(), 0, 'wraps at 2^24');
  assert.is(ids.allocate(), 1, 'and finds the freed id on the next round');
});

test.run();
