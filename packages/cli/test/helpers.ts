/**
 * Test helpers: running `graphdriver` in-process (main() with captured streams) or as a real
 * process (for signals, terminals, exit statuses), scratch directories under /tmp/cli-*, images
 * made by real producers (umoci and skopeo from Debian) and by our own writer, and the checks that
 * a store was left clean (no mount, no staging leftovers, no unrecorded layer).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as assert from 'uvu/assert';
import { isAtOrUnder, listLoops, mountsUnder, pack, unmountRecursive } from '@graphdriver/core';
import { main } from '../src/main.js';
import { writeOciLayout } from '../src/image/oci-writer.js';

export const run = promisify(execFile);
export const PKG_DIR = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(PKG_DIR, 'src', 'bin.ts');
export const DRIVERS = ['vfs', 'overlay', 'aufs', 'layer0', 'devmapper'] as const;
export type DriverName = (typeof DRIVERS)[number];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

class Collect extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString('latin1');
    cb();
  }
}

/** `graphdriver ...argv` in this process; stdout kept as latin1 so that tars survive byte for byte. */
export async function cli(argv: string[], opts: { stdin?: Readable | Buffer; signal?: AbortSignal; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  const stdout = new Collect();
  const stderr = new Collect();
  const stdin: Readable = Buffer.isBuffer(opts.stdin) ? Readable.from([opts.stdin]) : (opts.stdin as Readable | undefined) ?? Readable.from([]);
  const code = await main(argv, { stdout, stderr, stdin, env: opts.env ?? {}, ...(opts.signal === undefined ? {} : { signal: opts.signal }) });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** Like cli() but fails the test unless the command succeeded; returns stdout. */
export async function ok(argv: string[], opts: Parameters<typeof cli>[1] = {}): Promise<string> {
  const r = await cli(argv, opts);
  if (r.code !== 0) assert.unreachable(`graphdriver ${argv.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** `graphdriver ... --json`, parsed. */
export async function json<T = unknown>(argv: string[], opts: Parameters<typeof cli>[1] = {}): Promise<T> {
  return JSON.parse(await ok([...argv, '--json'], opts)) as T;
}

/** The real command as a child process (tsx runs the source). */
export function spawnCli(argv: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', BIN, ...argv], {
    cwd: PKG_DIR,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export async function spawnCliResult(argv: string[], env: NodeJS.ProcessEnv = {}, stdin?: Buffer): Promise<CliResult> {
  const child = spawnCli(argv, env);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('latin1')));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin!.end(stdin);
  const code = await new Promise<number>((resolve) => child.on('close', (c, sig) => resolve(c ?? (sig === null ? 125 : 128))));
  return { code, stdout, stderr };
}

/**
 * `graphdriver shutdown` for every store found in `dir` (a directory holding a driver's home, up to
 * two levels down): a driver may hold things outside its store between commands, as devmapper's
 * pool mount and loop devices, which removing the directory would not release.
 */
async function shutdownStores(dir: string): Promise<void> {
  const roots = [dir, ...readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name))];
  for (const root of roots) {
    for (const driver of DRIVERS) {
      if (existsSync(join(root, driver))) await cli(['--root', root, '--driver', driver, 'shutdown']);
    }
  }
}

/** A scratch directory /tmp/cli-<name>-XXXXXX, removed by the returned function (mounts under it first). */
export async function scratch(name: string): Promise<{ dir: string; dispose(): Promise<void> }> {
  const dir = await mkdtemp(`/tmp/cli-${name}-`);
  return {
    dir,
    async dispose() {
      await shutdownStores(dir);
      const loops = (await listLoops()).filter((l) => isAtOrUnder(l.backingFile, dir)).map((l) => `${l.path} (${l.backingFile})`);
      if ((await mountsUnder(dir).catch(() => [])).length > 0) await unmountRecursive(dir, { lazyFallback: true });
      await rm(dir, { recursive: true, force: true });
      assert.equal(loops, [], 'no loop device left on a file of the test after shutdown');
    },
  };
}

export async function withScratch<T>(name: string, fn: (dir: string) => Promise<T>): Promise<T> {
  const s = await scratch(name);
  try {
    return await fn(s.dir);
  } finally {
    await s.dispose();
  }
}

/** Global options for a store at `root` on `driver`. */
export function store(root: string, driver: string): string[] {
  return ['--root', root, '--driver', driver];
}

/** Checks that nothing is mounted under `root` and no staging or spool leftovers are there. */
export async function assertClean(root: string, driver: string): Promise<void> {
  assert.equal((await mountsUnder(root).catch(() => [])).map((m) => m.mountPoint), [], `nothing mounted under ${root}`);
  const staging = join(root, driver, 'staging');
  if (existsSync(staging)) assert.equal(readdirSync(staging), [], `${staging} is empty`);
  const records = join(root, 'image', driver);
  if (existsSync(records)) {
    assert.equal(readdirSync(records).filter((n) => n !== 'store.json'), [], `only store.json in ${records} (no lock, spool or temporary file)`);
  }
}

/** The layer ids the driver has on disk (its directory layout), whatever the store says. */
export function layersOnDisk(root: string, driver: string): string[] {
  if (driver === 'devmapper') {
    // one metadata file per device, beside the pool's own files and the base device
    const meta = join(root, 'devmapper', 'metadata');
    if (!existsSync(meta)) return [];
    return readdirSync(meta)
      .filter((n) => !['base', 'deviceset-metadata', 'transaction-metadata'].includes(n) && !n.startsWith('.'))
      .sort();
  }
  // where each driver keeps one directory per layer
  const dir = {
    vfs: join(root, 'vfs', 'dir'),
    aufs: join(root, 'aufs', 'diff'),
    layer0: join(root, 'layer0', 'overlay'),
  }[driver] ?? join(root, driver);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !['l', 'staging', 'dir'].includes(e.name))
    .map((e) => e.name)
    .sort();
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

// ---- trees -----------------------------------------------------------------------------------

export type Tree = Record<string, string | { link: string } | { mode: number; data: string } | null>;

/** Writes `tree` under `dir`: a string is a file, {link} a symlink, {mode,data} a file with a mode, null a directory. */
export async function writeTree(dir: string, tree: Tree): Promise<void> {
  for (const [path, v] of Object.entries(tree)) {
    const p = join(dir, path);
    await mkdir(v === null ? p : join(p, '..'), { recursive: true });
    if (v === null) continue;
    if (typeof v === 'string') await writeFile(p, v);
    else if ('link' in v) await run('ln', ['-sfn', v.link, p]);
    else {
      await writeFile(p, v.data);
      await chmod(p, v.mode);
    }
  }
}

/** Every entry under `dir` with type, mode, owner, size, content or link target (not directory times). */
export async function describeTree(dir: string): Promise<string[]> {
  const { stdout } = await run('find', ['.', '-mindepth', '1', '-printf', '%P\t%y\t%m\t%U:%G\t%s\t%l\n'], { cwd: dir, maxBuffer: 64 << 20 });
  const out: string[] = [];
  for (const line of stdout.split('\n').filter((l) => l !== '')) {
    const [path, type, mode, owner, size, link] = line.split('\t') as [string, string, string, string, string, string];
    const what = type === 'f' ? sha256(await readFile(join(dir, path))).slice(7, 19) : type === 'l' ? `-> ${link}` : '';
    out.push([path, type, mode, owner, type === 'd' ? '-' : size, what].join(' ').trimEnd());
  }
  return out.sort();
}

// ---- images ----------------------------------------------------------------------------------

/** An OCI layout made by our writer from trees (bottom first), gzip layers unless said. */
export async function ourImage(dir: string, trees: Tree[], tag: string, compression: 'gzip' | 'none' = 'gzip'): Promise<Awaited<ReturnType<typeof writeOciLayout>>> {
  const layers = [];
  for (const [i, t] of trees.entries()) {
    const src = join(dir, `.src-${tag.replace(/\W/g, '_')}-${i}`);
    await writeTree(src, t);
    layers.push({ tar: pack(src), compression });
  }
  const written = await writeOciLayout(join(dir, 'layout'), layers, tag);
  for (let i = 0; i < trees.length; i++) await rm(join(dir, `.src-${tag.replace(/\W/g, '_')}-${i}`), { recursive: true, force: true });
  return written;
}

/**
 * An OCI layout made by umoci, one layer per tree (each applied on the unpacked bundle of the
 * image so far: files of a tree are written, paths mapped to null... are removed), tagged `tag`.
 * umoci repack (not insert: Debian's umoci 0.4.7 insert writes layer tars cut off inside the last
 * file's padding, which Go's reader refuses too).
 */
export async function umociImage(layout: string, tag: string, steps: Array<{ write?: Tree; remove?: string[] }>): Promise<void> {
  if (!existsSync(join(layout, 'index.json'))) await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:${tag}`]);
  for (const [i, step] of steps.entries()) {
    const bundle = `${layout}.bundle-${i}`;
    await run('umoci', ['unpack', '--image', `${layout}:${tag}`, bundle]);
    try {
      await writeTree(join(bundle, 'rootfs'), step.write ?? {});
      for (const r of step.remove ?? []) await rm(join(bundle, 'rootfs', r), { recursive: true });
      await run('umoci', ['repack', '--image', `${layout}:${tag}`, bundle]);
    } finally {
      await rm(bundle, { recursive: true, force: true });
    }
  }
}

/** skopeo copy with no network and no policy file needed. */
export async function skopeo(from: string, to: string, extra: string[] = []): Promise<void> {
  await run('skopeo', ['--insecure-policy', 'copy', '-q', ...extra, from, to]);
}

/** The blobs of an OCI layout's first manifest: manifest, config and layer digests. */
export async function layoutBlobs(layout: string): Promise<{ manifest: string; config: string; layers: string[]; layerTypes: string[] }> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const manifest = index.manifests[0]!.digest;
  const m = JSON.parse(await readFile(blobPath(layout, manifest), 'utf8')) as { config: { digest: string }; layers: Array<{ digest: string; mediaType: string }> };
  return { manifest, config: m.config.digest, layers: m.layers.map((l) => l.digest), layerTypes: m.layers.map((l) => l.mediaType) };
}

export function blobPath(layout: string, digest: string): string {
  return join(layout, 'blobs', 'sha256', digest.slice(7));
}

/** Files in `dir` (for "nothing left behind" checks of the current directory of a run). */
export async function entries(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

export { PassThrough, readFileSync };
