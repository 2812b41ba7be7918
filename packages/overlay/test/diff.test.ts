/**
 * Diffs: the probes that decide between native and naive diffs are cached in the home as
 * containers/storage caches them (and probed again for another kernel), shown in status(), and
 * followed - a kernel with redirect_dir or metacopy in the mount options gets naive diffs that are
 * right where native ones would be wrong; applyDiff stores the kernel's whiteouts; staged apply
 * changes nothing until commit, and a process killed mid-apply leaves no half layer and only
 * staging garbage, which the next start removes.
 */
import { spawn } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { lgetxattrSync, S } from '@graphdriver/native';
import { codeOf, readStream, start, tarNames, tarOf, withRoot } from './helpers.js';

const rows = (s: Array<[string, string]>): Record<string, string> => Object.fromEntries(s);
const kinds = (cs: Array<{ path: string; kind: string }>): string[] => cs.map((c) => `${c.kind} ${c.path}`).sort();

test('probe results are cached in the home with the kernel release, shown in status(), and probed again for another kernel', async () => {
  await withRoot(async (root) => {
    const home = join(root, 'overlay');
    let d = await start(root);
    assert.is(readFileSync(join(home, 'native-diff()-true'), 'utf8').split('\n')[0], `kernel ${release()}`);
    assert.is(readFileSync(join(home, 'metacopy()-false'), 'utf8').split('\n')[0], `kernel ${release()}`);
    const status = rows(await d.status());
    assert.is(status['Native Overlay Diff'], 'true');
    assert.is(status['Using metacopy'], 'false');
    assert.is(status['Backing Filesystem'], 'extfs');
    assert.is(status['Supports d_type'], 'true');
    assert.is(status['Supports shifting'], 'true');
    assert.match(status['Mount method']!, /mount\(2\).*new mount API/);
    await d.cleanup();

    // a cached "no", written for this kernel, is believed
    renameSync(join(home, 'native-diff()-true'), join(home, 'native-diff()-false'));
    await writeFile(join(home, 'native-diff()-false'), `kernel ${release()}\nforced by the test`);
    d = await start(root);
    assert.is(rows(await d.status())['Native Overlay Diff'], 'false');
    assert.is(rows(await d.status())['Naive diff because'], 'forced by the test');
    await d.cleanup();

    // one written under another kernel is not
    await writeFile(join(home, 'native-diff()-false'), 'kernel 0.0.0-old\nfrom an older kernel');
    d = await start(root);
    assert.is(rows(await d.status())['Native Overlay Diff'], 'true');
    assert.not.ok(readdirSync(home).includes('native-diff()-false'), 'the stale result is gone');
    await d.cleanup();
  });
});

test('redirect_dir=on in mountopt: the probe turns native diff off, and the naive diff of a renamed directory is right', async () => {
  await withRoot(async (root) => {
    const d = await start(root, ['overlay.mountopt=redirect_dir=on']);
    const status = rows(await d.status());
    assert.is(status['Native Overlay Diff'], 'false');
    assert.match(status['Naive diff because']!, /redirect_dir/);
    assert.ok(readdirSync(join(root, 'overlay')).includes('native-diff(redirect_dir=on)-false'), 'cached under the mount options');
    await d.create('base');
    const b = await d.get('base');
    await mkdir(join(b, 'dir'));
    writeFileSync(join(b, 'dir', 'f'), 'f');
    await d.put('base');
    await d.create('child', 'base');
    const c = await d.get('child');
    renameSync(join(c, 'dir'), join(c, 'moved')); // a redirect xattr in the upper, not a copy
    await d.put('child');
    assert.ok(lgetxattrSync(join(root, 'overlay', 'child', 'diff', 'moved'), 'trusted.overlay.redirect').length > 0, 'the kernel wrote a redirect');
    assert.equal(kinds(await d.changes('child', 'base')), ['add /moved', 'add /moved/f', 'delete /dir']);
    assert.equal((await tarNames(await d.diff('child', 'base'))).sort(), ['.wh.dir', 'moved/', 'moved/f']);
    await d.cleanup();
  });
});

test('metacopy=on in mountopt: reported in status(), and diffs are naive (an upper file may hold only metadata)', async () => {
  await withRoot(async (root) => {
    const d = await start(root, ['overlay.mountopt=metacopy=on']);
    const status = rows(await d.status());
    assert.is(status['Using metacopy'], 'true');
    assert.is(status['Native Overlay Diff'], 'false');
    assert.match(status['Naive diff because']!, /metacopy/);
    await d.create('base');
    const b = await d.get('base');
    writeFileSync(join(b, 'big'), 'the data');
    await d.put('base');
    await d.create('child', 'base');
    const c = await d.get('child');
    const { chmodSync } = await import('node:fs');
    chmodSync(join(c, 'big'), 0o600); // copies up metadata only
    await d.put('child');
    const upper = join(root, 'overlay', 'child', 'diff', 'big');
    assert.ok(lgetxattrSync(upper, 'trusted.overlay.metacopy') !== undefined, 'the upper copy is marked metadata-only');
    assert.not.ok(readFileSync(upper).includes(Buffer.from('the data')), 'the upper copy holds no data');
    const tar = await readStream(await d.diff('child', 'base'));
    assert.ok(tar.includes(Buffer.from('the data')), 'the naive diff carries the file with its data');
    await d.cleanup();
  });
});

test('applyDiff stores the kernel whiteouts and opaque marker in diff/; native diffSize equals what the apply counted', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    await d.create('base');
    const b = await d.get('base');
    await mkdir(join(b, 'd'));
    writeFileSync(join(b, 'd', 'old'), 'old');
    writeFileSync(join(b, 'gone'), 'gone');
    await d.put('base');
    await d.create('layer', 'base');
    const applied = await d.applyDiff(
      'layer',
      'base',
      tarOf([
        { name: '.wh.gone', type: 'file' },
        { name: 'd/', type: 'dir', mode: 0o755 },
        { name: 'd/.wh..wh..opq', type: 'file' },
        { name: 'd/new', type: 'file', data: '12345' },
        { name: 'added', type: 'file', data: 'abc' },
      ]),
    );
    const diff = join(root, 'overlay', 'layer', 'diff');
    const wo = lstatSync(join(diff, 'gone'));
    assert.is(wo.mode & S.IFMT, S.IFCHR, 'a whiteout is a character device');
    assert.is(wo.rdev, 0, '0/0');
    assert.is(lgetxattrSync(join(diff, 'd'), 'trusted.overlay.opaque').toString(), 'y');
    assert.not.ok(readdirSync(join(diff, 'd')).some((n) => n.startsWith('.wh.')), 'no AUFS file left');
    assert.is(applied, 8);
    assert.is(await d.diffSize('layer', 'base'), applied);
    const m = await d.get('layer');
    assert.equal(readdirSync(m).sort(), ['added', 'd']);
    assert.equal(readdirSync(join(m, 'd')), ['new']);
    await d.put('layer');
    await d.cleanup();
  });
});

test('staged apply: nothing of the layer changes until commitStaged; cleanupStaging drops it; foreign paths are refused', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    await d.create('base');
    await d.create('layer', 'base');
    const staged = await d.applyDiffToStaging('layer', 'base', tarOf([{ name: 'staged.txt', type: 'file', data: 'staged' }]));
    assert.is(staged.size, 6);
    assert.equal(readdirSync(join(root, 'overlay', 'layer', 'diff')), [], 'the layer is untouched before the commit');
    await d.commitStaged('layer', staged);
    const m = await d.get('layer');
    assert.is(readFileSync(join(m, 'staged.txt'), 'utf8'), 'staged');
    assert.is(await codeOf(d.commitStaged('layer', await d.applyDiffToStaging('layer', 'base', tarOf([])))), 'ERR_GRAPHDRIVER_OPERATION_FAILED', 'a mounted layer cannot have its diff replaced');
    await d.put('layer');

    const other = await d.applyDiffToStaging('layer', 'base', tarOf([{ name: 'x', type: 'file', data: 'x' }]));
    await d.cleanupStaging(other);
    assert.equal(readdirSync(join(root, 'overlay', 'staging')).filter((n) => n.startsWith('layer-apply-')).length, 1, 'only the one staged while mounted is left');
    assert.is(await codeOf(d.commitStaged('layer', { stagingDir: '/etc', size: 0 })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.is(await codeOf(d.cleanupStaging({ stagingDir: join(root, 'overlay', 'staging', '..', 'layer'), size: 0 })), 'ERR_GRAPHDRIVER_INVALID_OPTION');
    assert.ok(readdirSync(join(root, 'overlay', 'layer')).includes('diff'), 'the layer survived the forged paths');
    await d.cleanup();
  });
});

test('a process killed mid-apply leaves no half layer; its staging garbage is removed on the next start', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    await d.create('base');
    await d.cleanup();
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'apply-child.ts'), root], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const staging = join(root, 'overlay', 'staging');
    let seen = 0;
    for (let i = 0; i < 300 && seen < 50; i++) {
      await sleep(50);
      const dirs = readdirSync(staging).filter((n) => n.startsWith('victim-apply-'));
      seen = dirs.length === 1 ? readdirSync(join(staging, dirs[0]!, 'diff')).length : 0;
    }
    child.kill('SIGKILL');
    await exited;
    assert.is(seen, 50, 'the child extracted its 50 files into staging before it was killed');
    assert.equal(readdirSync(join(root, 'overlay', 'victim', 'diff')), [], 'the layer holds nothing of the half apply');

    const again = await start(root);
    assert.equal(readdirSync(staging), [], 'the garbage is gone after a start');
    assert.is(await again.exists('victim'), true);
    await again.applyDiff('victim', 'base', tarOf([{ name: 'whole', type: 'file', data: 'w' }]));
    const m = await again.get('victim');
    assert.equal(readdirSync(m), ['whole']);
    await again.put('victim');
    await again.cleanup();
  });
});

test('applyDiff into a layer that has content, or is mounted, goes in place (as moby applies)', async () => {
  await withRoot(async (root) => {
    const d = await start(root);
    await d.create('base');
    await d.create('layer', 'base');
    await d.applyDiff('layer', 'base', tarOf([{ name: 'one', type: 'file', data: '1' }]));
    await d.applyDiff('layer', 'base', tarOf([{ name: 'two', type: 'file', data: '2' }]));
    assert.equal(readdirSync(join(root, 'overlay', 'layer', 'diff')).sort(), ['one', 'two']);
    await d.cleanup();
  });
});

test.run();
