/**
 * The kernel-aufs mount data (this kernel has no aufs, so the strings are what can be checked):
 * byte for byte the data moby v20.10's aufsMount passes to mount(2) - `br:<rw>=rw:<ro>=ro+wh...,
 * dio,xino=/dev/shm/aufs.xino[,dirperm1]`, a SELinux label as `,context="<label>"`, the branch list
 * cut where moby cuts it (a page minus the label minus 54, minus `,dirperm1`) and the rest added by
 * remounts of `append:<ro>=ro+wh,` entries, as many as fit - and what fuse-overlayfs is given.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { aufsMountData, aufsReadOnlyData, formatMountLabel, fuseOptions } from '../src/index.js';

const PAGE = 4096;

test('a short union: moby\'s exact data, with dirperm1, with a label', () => {
  assert.equal(aufsMountData('/var/lib/docker/aufs/diff/c', ['/var/lib/docker/aufs/diff/b', '/var/lib/docker/aufs/diff/a'], { dirperm1: false }), {
    mount: 'br:/var/lib/docker/aufs/diff/c=rw:/var/lib/docker/aufs/diff/b=ro+wh:/var/lib/docker/aufs/diff/a=ro+wh,dio,xino=/dev/shm/aufs.xino',
    appends: [],
  });
  assert.equal(aufsMountData('/r', ['/a'], { dirperm1: true }).mount, 'br:/r=rw:/a=ro+wh,dio,xino=/dev/shm/aufs.xino,dirperm1');
  assert.equal(
    aufsMountData('/r', ['/a'], { dirperm1: true, mountLabel: 'system_u:object_r:container_file_t:s0:c1,c2' }).mount,
    'br:/r=rw:/a=ro+wh,dio,xino=/dev/shm/aufs.xino,dirperm1,context="system_u:object_r:container_file_t:s0:c1,c2"',
  );
  // containers/storage's aufs.mountopt goes after xino, before dirperm1
  assert.equal(aufsMountData('/r', ['/a'], { dirperm1: true, mountopt: 'nodev,noexec' }).mount, 'br:/r=rw:/a=ro+wh,dio,xino=/dev/shm/aufs.xino,nodev,noexec,dirperm1');
  assert.equal(formatMountLabel('', 'l'), 'context="l"');
  assert.equal(formatMountLabel('a', ''), 'a');
});

test('a read-only union: every branch ro+wh', () => {
  assert.equal(aufsReadOnlyData(['/c', '/b', '/a'], { dirperm1: false }), { mount: 'br:/c=ro+wh:/b=ro+wh:/a=ro+wh,dio,xino=/dev/shm/aufs.xino', appends: [] });
  assert.throws(() => aufsReadOnlyData([], { dirperm1: false }), /at least one branch/);
});

/** `/` + a name padded with `x` to `length` bytes. */
const pathOf = (i: number, length: number): string => `/${String(i).padStart(4, '0')}`.padEnd(length, 'x');

test('200 branches: cut where moby cuts, then appends of as many as fit; every piece within a page', () => {
  // rw of 40 bytes: "br:" + 40 + "=rw" = 46; each ro of 93 bytes is ":" + 93 + "=ro+wh" = 100 bytes.
  // Room: 4096 - 54 = 4042, so 39 ro branches fit (46 + 3900 = 3946; one more would be 4046).
  const rw = pathOf(9999, 40);
  const ro = Array.from({ length: 200 }, (_, i) => pathOf(i, 93));
  const d = aufsMountData(rw, ro, { dirperm1: false });
  assert.is(d.mount, `br:${rw}=rw${ro.slice(0, 39).map((p) => `:${p}=ro+wh`).join('')},dio,xino=/dev/shm/aufs.xino`);
  // each append entry is "append:" + 93 + "=ro+wh," = 107 bytes: 37 per remount (3959; 38 would be 4066)
  const expected: string[] = [];
  for (let i = 39; i < 200; i += 37) expected.push(ro.slice(i, Math.min(i + 37, 200)).map((p) => `append:${p}=ro+wh,`).join(''));
  assert.equal(d.appends, expected);
  assert.equal(d.appends.map((a) => a.split('append:').length - 1), [37, 37, 37, 37, 13]);
  for (const piece of [d.mount, ...d.appends]) assert.ok(Buffer.byteLength(piece) < PAGE, `${Buffer.byteLength(piece)} bytes`);
  // every branch once, in order
  const all = [...d.mount.matchAll(/:([^:=]+)=ro\+wh/g), ...d.appends.join('').matchAll(/append:([^=]+)=ro\+wh,/g)].map((m) => m[1]);
  assert.equal(all, ro);
});

test('the cut is exact to the byte, and dirperm1 and the label take their room from the branches', () => {
  // 4042 bytes of room: a head of 46 and ro entries of 100 fill 3946; a last entry of 96 fills it exactly
  const rw = pathOf(1, 40);
  const ro = [...Array.from({ length: 39 }, (_, i) => pathOf(i, 93)), pathOf(39, 89), pathOf(40, 5)];
  const exact = aufsMountData(rw, ro, { dirperm1: false });
  assert.is(exact.appends.length, 1, 'the 96-byte entry fits exactly; the next one does not');
  assert.is(exact.appends[0], `append:${ro[40]}=ro+wh,`);
  const longer = aufsMountData(rw, [...ro.slice(0, 39), pathOf(39, 90), ro[40]!], { dirperm1: false });
  assert.is(longer.appends[0], `append:${pathOf(39, 90)}=ro+wh,append:${ro[40]}=ro+wh,`, 'one byte more and it is appended');
  // ",dirperm1" costs 9 bytes of room: the last full entry (100 bytes) no longer fits after 3946 + ...
  const withDirperm = aufsMountData(rw, ro, { dirperm1: true });
  assert.ok(withDirperm.mount.endsWith(',dio,xino=/dev/shm/aufs.xino,dirperm1'));
  assert.is((withDirperm.mount.match(/=ro\+wh/g) ?? []).length, 39);
  const label = 'x'.repeat(100);
  const labelled = aufsMountData(rw, ro, { dirperm1: false, mountLabel: label });
  assert.is((labelled.mount.match(/=ro\+wh/g) ?? []).length, 38, 'a 100-byte label takes one 100-byte branch out');
  for (const a of labelled.appends) assert.ok(a.endsWith(`,context="${label}"`), 'each remount carries the label too');
});

test('a branch longer than the room is an error, not moby\'s endless loop', () => {
  assert.throws(() => aufsMountData('/r', ['/a', `/${'y'.repeat(4100)}`], { dirperm1: false }), /does not fit/);
  assert.throws(() => aufsMountData(`/${'y'.repeat(4100)}`, [], { dirperm1: false }), /does not fit/);
});

test('fuse-overlayfs options: upper, work dir inside the branch, dev, ro for read-only unions; paths with , or : refused', () => {
  assert.is(
    fuseOptions({ target: '/m', rw: '/d/c', ro: ['/d/b', '/d/a'] }, ''),
    'lowerdir=/d/b:/d/a,upperdir=/d/c,workdir=/d/c/.wh..wh.work,dev',
  );
  assert.is(fuseOptions({ target: '/m', ro: ['/d/c', '/d/b'], options: ['noexec'], mountLabel: 'l' }, 'nodev'), 'lowerdir=/d/c:/d/b,dev,ro,nodev,noexec,context="l"');
  assert.throws(() => fuseOptions({ target: '/m', rw: '/d/a,b', ro: ['/d/x'] }, ''), /","/);
  assert.throws(() => fuseOptions({ target: '/m', rw: '/d/a', ro: ['/d/x:y'] }, ''), /":"/);
  assert.throws(() => fuseOptions({ target: '/m', rw: '/d/a', ro: [] }, ''), /at least one/);
});

test.run();
