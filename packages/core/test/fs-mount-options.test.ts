/** Mount option lists split into mount(2) flags and filesystem data, as mount(8) and moby read them. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MOUNT_ATTR, MS } from '@graphdriver/native';
import { flagWords, InvalidOptionError, mountAttrsOf, parseMountOptions } from '../src/index.js';

const rules = { driver: 'test' };

test('flag words become flags, in order, the later word winning; the rest is data', () => {
  const o = parseMountOptions(rules, 'nodev,ro,discard', ['noexec,rw', ' noatime ', 'nouuid']);
  assert.is(o.flags, MS.NODEV | MS.NOEXEC | MS.NOATIME);
  assert.equal(o.data, ['discard', 'nouuid']);
  assert.equal(parseMountOptions(rules, undefined, '', ['defaults']), { flags: 0, data: [] });
});

test('a data key given twice keeps its last value, in the place it was given last', () => {
  const o = parseMountOptions(rules, 'metacopy=on,volatile', 'context="system_u:object_r:x:s0",metacopy=off');
  assert.equal(o.data, ['volatile', 'context="system_u:object_r:x:s0"', 'metacopy=off']);
});

test('bind, move and propagation words are refused, and the keys the driver sets, with its reason', () => {
  for (const word of ['bind', 'rbind', 'remount', 'rshared', 'private']) {
    assert.throws(() => parseMountOptions(rules, `nodev,${word}`), (e: unknown) => e instanceof InvalidOptionError && /test: the mount option "\w+" cannot be used/.test(e.message));
  }
  const own = { driver: 'ovl', driverKeys: new Set(['upperdir']), driverKeysReason: 'is ours' };
  assert.throws(() => parseMountOptions(own, 'upperdir=/x'), (e: unknown) => e instanceof InvalidOptionError && e.message.includes('ovl: the mount option "upperdir=/x" is ours'));
  assert.equal(parseMountOptions(rules, 'upperdir=/x').data, ['upperdir=/x']);
});

test('flagWords gives the words of set flags back, mountAttrsOf the new mount API shape', () => {
  assert.equal(flagWords(MS.RDONLY | MS.NODEV | MS.LAZYTIME), ['ro', 'nodev', 'lazytime']);
  assert.equal(mountAttrsOf(MS.RDONLY | MS.NOSUID | MS.NOATIME | MS.STRICTATIME | MS.SYNCHRONOUS), {
    attrs: MOUNT_ATTR.RDONLY | MOUNT_ATTR.NOSUID | MOUNT_ATTR.NOATIME,
    sbFlags: ['sync'],
  });
  assert.equal(mountAttrsOf(MS.STRICTATIME | MS.DIRSYNC).attrs, MOUNT_ATTR.STRICTATIME);
});

test.run();
