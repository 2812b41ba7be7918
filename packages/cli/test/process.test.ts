/**
 * The command as a real process: Ctrl-C (SIGINT) in the middle of a layer, on overlay (staged
 * apply) and vfs (the layer removed), leaves no layer, no record, no mount, no staging or spool
 * file, and exits 130; progress bars on a terminal (a pty from script(1)) and none when piped;
 * exit statuses; a tar on a pipe byte for byte; no tar written to a terminal.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from '@graphdriver/core';
import { assertClean, BIN, json, layersOnDisk, PKG_DIR, run, spawnCli, spawnCliResult, store, withScratch, writeTree } from './helpers.js';

function sha(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0);
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('14000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\u000000', 257);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

/** A gzip layer of one file of `mib` MiB of zeros, made of gzip members (cheap to build, slow to apply). */
function zeroLayer(mib: number): { blob: Buffer; diffId: string } {
  const chunk = Buffer.alloc(16 << 20);
  const gz = gzipSync(chunk);
  const hdr = tarHeader('big.bin', mib << 20);
  const trailer = Buffer.alloc(1024);
  const diff = createHash('sha256').update(hdr);
  const parts = [gzipSync(hdr)];
  for (let i = 0; i < mib / 16; i++) {
    parts.push(gz);
    diff.update(chunk);
  }
  parts.push(gzipSync(trailer));
  diff.update(trailer);
  return { blob: Buffer.concat(parts), diffId: `sha256:${diff.digest('hex')}` };
}

/** An OCI layout whose layers are a small one and then `mib` MiB of zeros. */
async function slowImage(dir: string, mib: number): Promise<string> {
  const layout = join(dir, 'slow');
  await mkdir(join(layout, 'blobs/sha256'), { recursive: true });
  await writeTree(join(dir, 'small'), { 'etc/small': 'small\n' });
  const chunks: Buffer[] = [];
  for await (const c of pack(join(dir, 'small'))) chunks.push(c as Buffer);
  const smallTar = Buffer.concat(chunks);
  const layers = [{ blob: gzipSync(smallTar), diffId: sha(smallTar) }, zeroLayer(mib)];
  const put = async (b: Buffer): Promise<string> => {
    await writeFile(join(layout, 'blobs/sha256', sha(b).slice(7)), b);
    return sha(b);
  };
  const descs = [];
  for (const l of layers) descs.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: await put(l.blob), size: l.blob.length });
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) } }));
  const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(config), size: config.length }, layers: descs }));
  const md = await put(manifest);
  await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'slow' } }] }));
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  return layout;
}

/** Runs the command, sends SIGINT once stderr shows `when` (and `delayMs` more), resolves to its exit and stderr. */
async function interrupt(argv: string[], when: RegExp, delayMs: number, stdin?: (s: NodeJS.WritableStream) => void): Promise<{ code: number | null; stderr: string; sawIt: boolean }> {
  const child = spawnCli(argv, { NODE_DEBUG: 'graphdriver:cli' });
  let stderr = '';
  let sawIt = false;
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!sawIt && when.test(stderr)) {
      sawIt = true;
      setTimeout(() => child.kill('SIGINT'), delayMs);
    }
  });
  child.stdout!.resume();
  if (stdin === undefined) child.stdin!.end();
  else stdin(child.stdin!);
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  return { code, stderr, sawIt };
}

for (const driver of ['overlay', 'vfs'] as const) {
  test(`${driver}: Ctrl-C in the middle of a layer: exit 130, no layer, no record, no mount, no staging or spool file`, () =>
    withScratch(`proc-int-${driver}`, async (dir) => {
      const root = join(dir, 'root');
      const layout = await slowImage(dir, 1024);
      const r = await interrupt([...store(root, driver), 'import', layout], /applying layer 2\/2/, 400);
      assert.ok(r.sawIt, `the second layer started: ${r.stderr}`);
      assert.is(r.code, 130, r.stderr);
      assert.match(r.stderr, /^graphdriver import: ERR_GRAPHDRIVER_INTERRUPTED: interrupted; what was in progress was undone$/m);
      assert.not.match(r.stderr, /applied layer 2\/2/, 'interrupted before the layer was complete');
      assert.equal(layersOnDisk(root, driver), [], 'the complete first layer this import made is gone too');
      assert.equal((await json<{ layers: unknown[] }>([...store(root, driver), 'ls'])).layers, []);
      await assertClean(root, driver);
    }));
}

test('Ctrl-C while apply reads a tar from standard input: the new layer is removed', () =>
  withScratch('proc-int-apply', async (dir) => {
    const root = join(dir, 'root');
    const header = tarHeader('data.bin', 64 << 20);
    const r = await interrupt([...store(root, 'overlay'), 'apply', 'fresh', '-'], /applying standard input to layer fresh/, 300, (stdin) => {
      stdin.write(Buffer.concat([header, Buffer.alloc(1 << 20)])); // then nothing more: the tar stalls
    });
    assert.ok(r.sawIt, r.stderr);
    assert.is(r.code, 130, r.stderr);
    assert.equal(layersOnDisk(root, 'overlay'), []);
    // standard input open but silent: the interrupt still ends it
    const silent = await interrupt([...store(root, 'vfs'), 'apply', 'quiet', '-'], /applying standard input to layer quiet/, 200, () => undefined);
    assert.ok(silent.sawIt, silent.stderr);
    assert.is(silent.code, 130, silent.stderr);
    assert.equal(layersOnDisk(root, 'vfs'), []);
    await assertClean(root, 'overlay');
    await assertClean(root, 'vfs');
  }));

test('progress bars on a terminal, none when piped; exit statuses; tars on pipes, never on a terminal', () =>
  withScratch('proc-tty', async (dir) => {
    const root = join(dir, 'root');
    const layout = await slowImage(dir, 64);
    const quoted = (a: string[]): string => a.map((x) => `'${x}'`).join(' ');
    const cmd = [process.execPath, '--import', 'tsx', BIN, ...store(root, 'overlay'), 'import', layout];
    await run('script', ['-qec', quoted(cmd), join(dir, 'tty.log')], { cwd: PKG_DIR });
    const screen = (await readFile(join(dir, 'tty.log'), 'utf8')).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    assert.match(screen, /2\/2 [0-9a-f]{12} +█+ 100% [\d.]+KiB\/[\d.]+KiB -> 64MiB {2}1 entry/, 'a finished bar for the big layer');
    assert.match(screen, /imported slow +image [0-9a-f]{12} +2 layers/);

    // piped: the result on stdout, nothing at all on stderr
    const piped = await spawnCliResult([...store(root, 'overlay'), 'import', layout]);
    assert.equal([piped.code, piped.stderr], [0, '']);
    assert.match(piped.stdout, /imported slow .*\(0 new, 2 already stored\)/);

    // exit statuses of the real process
    assert.is((await spawnCliResult(['--frob'])).code, 2);
    assert.is((await spawnCliResult([...store(root, 'overlay'), 'mount', 'nope'])).code, 1);

    // a tar on a pipe is the tar in a file; on a terminal it is refused
    await json([...store(root, 'overlay'), 'create', '--rw', '--parent', 'slow', 'c']);
    const viaPipe = await spawnCliResult([...store(root, 'overlay'), 'diff', 'c', '--parent', 'slow']);
    assert.is(viaPipe.code, 0, viaPipe.stderr);
    await spawnCliResult([...store(root, 'overlay'), 'diff', 'c', '--parent', 'slow', '-o', join(dir, 'c.tar')]);
    assert.ok(Buffer.from(viaPipe.stdout, 'latin1').equals(await readFile(join(dir, 'c.tar'))));
    const ttyDiff = [process.execPath, '--import', 'tsx', BIN, ...store(root, 'overlay'), 'diff', 'c'];
    await run('script', ['-qec', quoted(ttyDiff), join(dir, 'tty2.log')], { cwd: PKG_DIR }).catch(() => undefined);
    assert.match(await readFile(join(dir, 'tty2.log'), 'utf8'), /ERR_GRAPHDRIVER_USAGE: refusing to write a tar to a terminal: use -o FILE or a pipe/);
    await assertClean(root, 'overlay');
  }));

test.run();
