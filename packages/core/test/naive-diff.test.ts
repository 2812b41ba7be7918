/**
 * NaiveDiffDriver over a small real ProtoDriver written here (layers are directory copies made with
 * `cp -a`, get/put only count references): diff, changes, applyDiff and diffSize end to end on the
 * real filesystem, the DiffApply property (applied size = diffSize, applied tree = source tree),
 * and no reference leaked on success, failure, abort or an abandoned stream.
 */
import { execFile } from 'node:child_process';
import { chmodSync, linkSync, mkdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { listTar } from '../src/archive/index.js';
import { changesDirs } from '../src/changes/index.js';
import type { CreateOpts, MountOpts, ProtoDriver } from '../src/driver.js';
import { LayerUnknownError } from '../src/errors.js';
import { NaiveDiffDriver } from '../src/naive-diff.js';

const run = promisify(execFile);

/** Layers as plain directories; a child starts as a `cp -a` copy of its parent. */
class CopyDriver implements ProtoDriver {
  readonly name = 'copy-test';
  readonly refs = new Map<string, number>();
  constructor(readonly home: string) {}
  private dir(id: string): string {
    return `${this.home}/dir/${id}`;
  }
  async create(id: string, parent?: string, _opts?: CreateOpts): Promise<void> {
    mkdirSync(`${this.home}/dir`, { recursive: true });
    if (parent === undefined || parent === '') mkdirSync(this.dir(id), { mode: 0o755 });
    else await run('cp', ['-a', this.dir(parent), this.dir(id)]);
  }
  createReadWrite(id: string, parent?: string, opts?: CreateOpts): Promise<void> {
    return this.create(id, parent, opts);
  }
  async remove(id: string): Promise<void> {
    rmSync(this.dir(id), { recursive: true, force: true });
  }
  async get(id: string, _opts?: MountOpts): Promise<string> {
    if (!(await this.exists(id))) throw new LayerUnknownError(id);
    this.refs.set(id, (this.refs.get(id) ?? 0) + 1);
    return this.dir(id);
  }
  async put(id: string): Promise<void> {
    const n = this.refs.get(id) ?? 0;
    if (n <= 0) throw new Error(`put(${id}) without get`);
    if (n === 1) this.refs.delete(id);
    else this.refs.set(id, n - 1);
  }
  async exists(id: string): Promise<boolean> {
    try {
      return statSync(this.dir(id)).isDirectory();
    } catch {
      return false;
    }
  }
  async status(): Promise<Array<[string, string]>> {
    return [['Layers', 'copies']];
  }
  async metadata(id: string): Promise<Record<string, string>> {
    return { Dir: this.dir(id) };
  }
  async cleanup(): Promise<void> {}
}

async function tarEntries(stream: Readable): Promise<Array<{ name: string; type: string; size: number }>> {
  return (await listTar(stream)).map((e) => ({ name: e.name, type: e.kind, size: e.size }));
}

async function withDriver(fn: (d: NaiveDiffDriver, inner: CopyDriver) => Promise<void>): Promise<void> {
  const home = await mkdtemp('/tmp/changes-naive-');
  const inner = new CopyDriver(home);
  try {
    await fn(new NaiveDiffDriver(inner), inner);
    // let stream 'close' callbacks run before checking for leaked references
    await new Promise((r) => setTimeout(r, 20));
    assert.equal([...inner.refs], [], 'every get was put');
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** base: a small tree with a hard link and a symlink; upper: base mutated. */
async function baseAndUpper(d: NaiveDiffDriver): Promise<{ base: string; upper: string }> {
  await d.create('base');
  const b = await d.get('base');
  mkdirSync(`${b}/etc`);
  writeFileSync(`${b}/etc/passwd`, 'root:x:0:0\n');
  writeFileSync(`${b}/etc/hosts`, '127.0.0.1 localhost\n');
  mkdirSync(`${b}/bin`);
  writeFileSync(`${b}/bin/sh`, Buffer.alloc(5000, 1));
  linkSync(`${b}/bin/sh`, `${b}/bin/bash`);
  symlinkSync('sh', `${b}/bin/dash`);
  mkdirSync(`${b}/var/lib`, { recursive: true });
  writeFileSync(`${b}/var/lib/state`, 'x');
  await d.put('base');
  // parents whose mtimes are all in an earlier second than the upper's changes
  await run('touch', ['-d', '2020-01-01', `${b}/etc`, `${b}/bin`, `${b}/var`, `${b}/var/lib`]);

  await d.createReadWrite('upper', 'base');
  const u = await d.get('upper');
  writeFileSync(`${u}/etc/passwd`, 'root:x:0:0\nuser:x:1000:1000\n');
  unlinkSync(`${u}/etc/hosts`);
  rmSync(`${u}/var`, { recursive: true });
  mkdirSync(`${u}/opt/app`, { recursive: true });
  writeFileSync(`${u}/opt/app/run`, Buffer.alloc(300, 2));
  linkSync(`${u}/opt/app/run`, `${u}/opt/app/run2`);
  symlinkSync('/opt/app/run', `${u}/opt/run`);
  chmodSync(`${u}/bin/sh`, 0o700);
  await d.put('upper');
  return { base: 'base', upper: 'upper' };
}

test('changes, diff, applyDiff, diffSize: the applied layer equals the source, sizes agree', () =>
  withDriver(async (d) => {
    await baseAndUpper(d);
    const changes = await d.changes('upper', 'base');
    assert.equal(
      changes.map((c) => `${c.kind} ${c.path}`),
      [
        'modify /bin',
        'modify /bin/bash', // the same inode as /bin/sh: its mode changed too
        'modify /bin/sh',
        'modify /etc',
        'delete /etc/hosts',
        'modify /etc/passwd',
        'add /opt',
        'add /opt/app',
        'add /opt/app/run',
        'add /opt/app/run2',
        'add /opt/run',
        'delete /var',
      ],
    );

    const t0 = Date.now();
    const entries = await tarEntries(await d.diff('upper', 'base'));
    assert.ok(Date.now() >= (Math.floor(t0 / 1000) + 1) * 1000, 'the stream ends in the next second, as moby sleeps');
    assert.equal(
      entries.map((e) => `${e.type} ${e.name}`),
      [
        'dir bin/',
        'file bin/bash',
        'link bin/sh',
        'dir etc/',
        'file etc/.wh.hosts',
        'file etc/passwd',
        'dir opt/',
        'dir opt/app/',
        'file opt/app/run',
        'link opt/app/run2',
        'symlink opt/run',
        'file .wh.var',
      ],
    );

    const size = await d.diffSize('upper', 'base');
    assert.is(size, 5000 + 'root:x:0:0\nuser:x:1000:1000\n'.length + 300);
    await d.create('applied', 'base');
    const applied = await d.applyDiff('applied', 'base', await d.diff('upper', 'base'));
    assert.is(applied, size, 'DiffApply: applied size equals DiffSize');
    assert.equal(await d.changes('applied', 'upper'), [], 'the applied layer has the source layer\'s tree');
  }));

test('without a parent: the whole layer, and its size', () =>
  withDriver(async (d) => {
    await baseAndUpper(d);
    const size = await d.diffSize('base');
    assert.is(size, 'root:x:0:0\n'.length + '127.0.0.1 localhost\n'.length + 5000 + 1);
    await d.create('copy');
    assert.is(await d.applyDiff('copy', undefined, await d.diff('base')), size);
    const inner = d.driver as CopyDriver;
    assert.equal(await changesDirs(`${inner.home}/dir/copy`, `${inner.home}/dir/base`), []);
    assert.is((await d.changes('base')).length, 10);
  }));

test('no reference leaks: abandoned stream, unknown layers, abort', () =>
  withDriver(async (d, inner) => {
    await baseAndUpper(d);
    const s = await d.diff('upper', 'base');
    assert.is(inner.refs.get('upper'), 1, 'the layer stays mounted while its diff is read');
    assert.is(inner.refs.get('base'), undefined, 'the parent is released once the changes are known');
    s.destroy();

    assert.instance(await d.diff('nope', 'base').catch((e: unknown) => e), LayerUnknownError);
    assert.instance(await d.diff('upper', 'nope').catch((e: unknown) => e), LayerUnknownError);
    assert.instance(await d.changes('upper', 'nope').catch((e: unknown) => e), LayerUnknownError);
    assert.instance(await d.diffSize('nope').catch((e: unknown) => e), LayerUnknownError);
    const tar = await d.diff('base');
    const applyErr = await d.applyDiff('nope', undefined, tar).catch((e: unknown) => e);
    assert.instance(applyErr, LayerUnknownError);
    assert.ok(tar.destroyed, 'the input tar is destroyed when the layer cannot be mounted');

    const ac = new AbortController();
    ac.abort();
    assert.is(((await d.diff('upper', 'base', { signal: ac.signal }).catch((e: unknown) => e)) as Error).name, 'AbortError');
    const ac2 = new AbortController();
    const stream = await d.diff('upper', 'base', { signal: ac2.signal });
    ac2.abort();
    const readErr = await tarEntries(stream).catch((e: unknown) => e);
    assert.is((readErr as Error).name, 'AbortError');
    await d.create('target', 'base');
    const ac3 = new AbortController();
    const p = d.applyDiff('target', 'base', await d.diff('upper', 'base'), { signal: ac3.signal });
    ac3.abort();
    assert.is(((await p.catch((e: unknown) => e)) as Error).name, 'AbortError');
  }));

test.run();
