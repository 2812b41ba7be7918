/**
 * Mounting: a 500-deep stack with every layer's file visible through each mount method (`auto`,
 * the new API, classic mount(2) forced), the form classic mount(2) takes at each depth (absolute
 * short links, fd paths, the mount(8) helper) read back from /proc/self/mountinfo, 501 lowers a
 * MaxDepthError, the 4095-byte data limit never crossed, mount options (`overlay.mountopt`, per-get
 * options, `ro`), labels, get/put counting, re-adoption of an earlier process's mounts, and EBUSY
 * on unmount retried, then detached.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MS } from '@graphdriver/native';
import { classicData, classicFormFor, MOUNT_DATA_MAX, parseMountOptions, type OverlayMount } from '../src/index.js';
import { codeOf, errorOf, mountAt, start, withRoot } from './helpers.js';

function request(lowers: number, home = '/var/lib/containers/storage/overlay', label?: string): OverlayMount {
  return {
    target: `${home}/top/merged`,
    lowers: Array.from({ length: lowers }, (_, i) => `${home}/l/${String(i).padStart(26, 'A')}`),
    upper: { dir: `${home}/top/diff`, work: `${home}/top/work` },
    options: parseMountOptions('nodev,metacopy=off'),
    driverData: [],
    ...(label === undefined ? {} : { label }),
  };
}

test('classic mount(2) data: the form that fits a page is chosen, and no form ever passes 4095 bytes', () => {
  assert.is(classicFormFor(request(1), { helper: true }), 'mount(2)');
  assert.is(classicFormFor(request(60), { helper: true }), 'mount(2)', '60 lowers of a usual home fit as absolute paths');
  assert.is(classicFormFor(request(80), { helper: true }), 'mount(2) fd paths');
  assert.is(classicFormFor(request(200), { helper: true }), 'mount(2) fd paths');
  assert.is(classicFormFor(request(500), { helper: true }), 'mount(8) helper');
  assert.is(classicFormFor(request(500), { helper: false }), undefined, 'without the helper 500 lowers do not fit mount(2)');
  assert.is(classicFormFor(request(1, '/a,b'), { helper: true }), 'mount(2) fd paths', 'a comma in a path cannot be written in mount data');
  const abs = classicData(request(60), (p) => p);
  assert.ok(abs.length <= MOUNT_DATA_MAX, `${abs.length} bytes`);
  assert.ok(classicData(request(80), (p) => p).length > MOUNT_DATA_MAX);
  assert.match(abs, /^lowerdir=\/var\/lib\/containers\/storage\/overlay\/l\/A+0:.*,upperdir=.*\/top\/diff,workdir=.*\/top\/work,metacopy=off$/);
  assert.not.match(abs, /nodev/, 'flags go to mount(2) as flags, not as data');
  const labelled = classicData(request(1, undefined, 'system_u:object_r:container_file_t:s0:c1,c2'), (p) => p);
  assert.match(labelled, /,context="system_u:object_r:container_file_t:s0:c1,c2"$/, 'the label is passed through quoted, as go-selinux formats it');
});

test('mount options split into flags and data; the driver keeps lowerdir, upperdir and workdir to itself', () => {
  const o = parseMountOptions('nodev,ro,metacopy=on', ['noexec', 'metacopy=off']);
  assert.is(o.flags, MS.NODEV | MS.RDONLY | MS.NOEXEC);
  assert.equal(o.data, ['metacopy=off']);
  assert.ok(o.readOnly);
  assert.throws(() => parseMountOptions('upperdir=/x'), /set by the driver/);
  assert.throws(() => parseMountOptions(['bind']), /cannot be used/);
});

test('a 500-deep stack: every layer file visible through each mount method; 501 lowers are a MaxDepthError', async () => {
  await withRoot(async (root) => {
    const maker = await start(root);
    const ids: string[] = [];
    for (let i = 0; i <= 500; i++) {
      const id = `layer-${i}`;
      await maker.create(id, i === 0 ? undefined : ids[i - 1]);
      // written straight into the diff (the layout is the format): 500 mounts are not what this builds
      writeFileSync(join((await maker.metadata(id)).UpperDir!, `f${i}`), id);
      ids.push(id);
    }
    await maker.cleanup();
    const top = ids[500]!;

    const expected = { auto: /lowerdir\+=/, new: /lowerdir\+=/, classic: /lowerdir=3:4:5:/ };
    for (const api of ['auto', 'new', 'classic'] as const) {
      const d = await start(root, [`overlay.mount_api=${api}`]);
      const merged = await d.get(top);
      try {
        const names = readdirSync(merged).filter((n) => n.startsWith('f'));
        assert.is(names.length, 501, `${api}: 501 files seen (500 lowers + the upper)`);
        for (let i = 0; i <= 500; i++) assert.is(readFileSync(join(merged, `f${i}`), 'utf8'), `layer-${i}`, `${api}: f${i}`);
        assert.match(mountAt(merged)!.superOptions, expected[api], `${api}: mounted as expected`);
        writeFileSync(join(merged, 'written'), api);
        assert.is(readFileSync(join(root, 'overlay', top, 'diff', 'written'), 'utf8'), api, `${api}: the top layer is the upper`);
      } finally {
        await d.put(top);
      }
      assert.is(mountAt(merged), undefined, `${api}: unmounted after put`);
      await d.cleanup();
    }

    // classic at the depths of its other forms
    const classic = await start(root, ['overlay.mount_api=classic']);
    for (const [depth, form] of [
      // layers with a child: read-only, the layer's own diff as the top lower
      [1, /^ro,lowerdir=\/[^,]*\/layer-1\/diff:\/[^,:]*\/overlay\/l\/[A-Z2-7]{26}(,|$)/],
      [150, /lowerdir=\/proc\/self\/fd\/\d+:\/proc\/self\/fd\/\d+:/],
    ] as const) {
      const merged = await classic.get(ids[depth]!);
      try {
        assert.match(mountAt(merged)!.superOptions, form, `classic at depth ${depth}`);
        assert.is(readdirSync(merged).filter((n) => n.startsWith('f')).length, depth + 1, `classic at depth ${depth}: every layer's file`);
      } finally {
        await classic.put(ids[depth]!);
      }
    }

    const err = await errorOf(classic.create('layer-501', top));
    assert.is(err.code, 'ERR_GRAPHDRIVER_MAX_DEPTH');
    assert.is((err as unknown as { depth: number }).depth, 501);
    assert.is((err as unknown as { limit: number }).limit, 500);
    assert.is(await classic.exists('layer-501'), false, 'nothing made');
    assert.equal(readdirSync(join(root, 'overlay', 'staging')), [], 'nothing left in staging');
    assert.not.ok(readdirSync(join(root, 'overlay', top)).includes('committed'), 'the refused child did not commit its parent');
    // read-only, the top's own diff becomes a 501st lower
    assert.is(await codeOf(classic.get(top, { readOnly: true })), 'ERR_GRAPHDRIVER_MAX_DEPTH');
    await classic.cleanup();
  });
});

test('mountopt and per-get options reach the mount; ro mounts have no upper; labels are passed to the kernel', async () => {
  await withRoot(async (root) => {
    for (const api of ['new', 'classic']) {
      const d = await start(root, [`overlay.mount_api=${api}`, 'overlay.mountopt=nodev']);
      if (!(await d.exists('base'))) {
        await d.create('base');
        await d.create('child', 'base');
      }
      // the label reaches the kernel, which without SELinux has nothing to take it with
      const labelled = await errorOf(d.get('child', { mountLabel: 'system_u:object_r:container_file_t:s0:c1,c2' }));
      assert.is(labelled.code, 'ERR_GRAPHDRIVER_OPERATION_FAILED', `${api}: a label on a kernel without SELinux`);
      assert.is((labelled.cause as { code?: string }).code, 'EINVAL');
      if (api === 'new') assert.match(labelled.message, /context/, 'the kernel names the option it refused');
      assert.is(mountAt(join(root, 'overlay', 'child', 'merged')), undefined, 'nothing mounted');

      let merged = await d.get('child', { options: ['noexec'] });
      let m = mountAt(merged)!;
      assert.match(m.options, /\bnodev\b/, `${api}: overlay.mountopt=nodev`);
      assert.match(m.options, /\bnoexec\b/, `${api}: a per-get option`);
      assert.match(m.superOptions, /upperdir=/);
      await d.put('child');

      merged = await d.get('child', { options: ['ro'] });
      m = mountAt(merged)!;
      assert.not.match(m.superOptions, /upperdir=/, `${api}: ro mounts the layer's diff as a lower`);
      let code: string | undefined;
      try {
        writeFileSync(join(merged, 'x'), 'x');
      } catch (err) {
        code = (err as { code?: string }).code;
      }
      assert.is(code, 'EROFS', `${api}: ro`);
      await d.put('child');
      assert.is(await codeOf(d.get('child', { options: ['upperdir=/tmp'] })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
      await d.cleanup();
    }
  });
});

test('a layer without lowers is its diff directory, or a read-only bind mount of it when it has children or ro is asked', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    await d.create('solo');
    const p = await d.get('solo');
    assert.is(p, join(root, 'overlay', 'solo', 'diff'), 'served directly, as moby does (no mount)');
    await d.put('solo');
    const ro = await d.get('solo', { readOnly: true });
    assert.is(ro, join(root, 'overlay', 'solo', 'merged'));
    assert.ok(mountAt(ro) !== undefined, 'mounted');
    assert.throws(() => writeFileSync(join(ro, 'x'), 'x'), /EROFS/);
    await d.put('solo');
    assert.is(mountAt(ro), undefined);
    await d.create('kid', 'solo');
    const committed = await d.get('solo');
    assert.is(committed, ro, 'a parent is served read-only');
    assert.throws(() => writeFileSync(join(committed, 'x'), 'x'), /EROFS/);
    await d.put('solo');
    await d.cleanup();
  });
});

test('n gets need n puts; mounts of an earlier process are adopted with one reference', async () => {
  await withRoot(async (root) => {
    const a = await start(root);
    await a.create('base');
    await a.create('layer', 'base');
    const merged = await a.get('layer');
    await a.get('layer');
    await a.get('layer');
    await a.put('layer');
    await a.put('layer');
    assert.ok(mountAt(merged) !== undefined, 'still mounted with one reference left');
    await a.put('layer');
    assert.is(mountAt(merged), undefined, 'unmounted by the last put');

    // an earlier process: it mounted and went away without put or cleanup
    await a.get('layer');
    const before = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(merged)).length;
    const b = await start(root);
    assert.is(await b.get('layer'), merged);
    const after = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(merged)).length;
    assert.is(after, before, 'no second mount: the earlier one was adopted');
    await b.put('layer');
    assert.ok(mountAt(merged) !== undefined, "the earlier process's reference holds it");
    await b.put('layer');
    assert.is(mountAt(merged), undefined, 'the put matching the earlier get unmounts');
    await b.cleanup();
  });
});

test('unmount retries EBUSY while a process is inside the mount, then detaches it lazily; put never fails for it', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    await d.create('base');
    await d.create('layer', 'base');

    // a process that leaves during the retries: the unmount succeeds on a retry
    let merged = await d.get('layer');
    let sleeper = spawn('sleep', ['30'], { cwd: merged, stdio: 'ignore' });
    await sleep(100);
    setTimeout(() => sleeper.kill('SIGKILL'), 150);
    let t = performance.now();
    await d.put('layer');
    let ms = performance.now() - t;
    assert.is(mountAt(merged), undefined, 'unmounted');
    assert.ok(ms >= 100 && ms < 450, `retried until the process left (${ms.toFixed(0)} ms)`);

    // a process that stays: after the retries the mount is detached
    merged = await d.get('layer');
    sleeper = spawn('sleep', ['30'], { cwd: merged, stdio: 'ignore' });
    await sleep(100);
    t = performance.now();
    try {
      await d.put('layer');
      ms = performance.now() - t;
      assert.is(mountAt(merged), undefined, 'detached from the tree');
      assert.ok(ms >= 400, `retried for ~0.5 s first (${ms.toFixed(0)} ms)`);
    } finally {
      sleeper.kill('SIGKILL');
    }
    assert.ok(statSync(join(root, 'overlay', 'layer', 'diff')).isDirectory());
    await d.cleanup();
  });
});

test.run();
