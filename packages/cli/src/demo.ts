/**
 * The README's demo, `graphdriver demo` (and the workspace's `pnpm demo`): everything the command
 * does, end to end, on this machine's default driver, in a scratch store that is removed at the
 * end. It builds a three-layer image with the project's own tooling (core's pack, our OCI writer;
 * nothing is downloaded), imports it, makes a container layer, writes and deletes files in it,
 * shows its changes, writes its diff to a file, applies that to a fresh layer, shows that both
 * trees are the same, and cleans up - printing each step and the command line that does it.
 */
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { mountsUnder, pack, unmountRecursive } from '@graphdriver/core';
import type { CliIo } from './context.js';
import { writeOciLayout } from './image/oci-writer.js';

/** Runs one command line of ours: `main` of main.ts, passed in to keep the module graph acyclic. */
export type RunCommand = (argv: readonly string[], io: CliIo) => Promise<number>;

export interface DemoOptions {
  /** Driver and options as given to `graphdriver demo` (default: the machine's default driver). */
  driver?: string | undefined;
  opts?: string[];
  /** Where to make the scratch directory (default: the system's temporary directory). */
  tmp?: string;
  /** Keep the scratch directory (store, image, diff) for a look afterwards. */
  keep?: boolean;
}

class DemoFailed extends Error {}

/**
 * Every entry of a tree as one line of what a person would compare: type, mode, owner, size,
 * content digest or link target, and whole-second mtime for non-directories (tars carry whole
 * seconds, and a directory's mtime changes with what is made in it, as moby's changes ignore it).
 */
async function treeFacts(dir: string): Promise<Map<string, string>> {
  const facts = new Map<string, string>();
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = await lstat(p);
      let what = '';
      if (st.isFile()) what = createHash('sha256').update(await readFile(p)).digest('hex').slice(0, 16);
      else if (st.isSymbolicLink()) what = `-> ${await readlink(p)}`;
      const time = st.isDirectory() ? '' : String(Math.floor(st.mtimeMs / 1000));
      facts.set(`/${relative(dir, p)}`, [(st.mode & 0o170000).toString(8), (st.mode & 0o7777).toString(8), `${st.uid}:${st.gid}`, st.isDirectory() ? '' : st.size, what, time].join(' '));
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return facts;
}

/** The paths where two trees differ, with what differs. */
async function compareTrees(a: string, b: string): Promise<string[]> {
  const [fa, fb] = await Promise.all([treeFacts(a), treeFacts(b)]);
  const out: string[] = [];
  for (const path of [...new Set([...fa.keys(), ...fb.keys()])].sort()) {
    const x = fa.get(path);
    const y = fb.get(path);
    if (x !== y) out.push(`${path}: ${x ?? 'missing'} | ${y ?? 'missing'}`);
  }
  return out;
}

async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const e of (await readdir(d, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(d, e.name);
      out.push(`/${relative(dir, p)}${e.isDirectory() ? '/' : e.isSymbolicLink() ? '@' : ''}`);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

async function buildSources(work: string): Promise<string[]> {
  const base = join(work, 'src', 'base');
  await mkdir(join(base, 'etc'), { recursive: true });
  await mkdir(join(base, 'bin'), { recursive: true });
  await mkdir(join(base, 'usr/share/doc'), { recursive: true });
  await mkdir(join(base, 'var/log'), { recursive: true });
  await writeFile(join(base, 'etc/os-release'), 'NAME="graphdriver demo"\nID=demo\n');
  await writeFile(join(base, 'etc/motd'), 'Welcome to the base layer\n');
  await writeFile(join(base, 'bin/hello'), '#!/bin/sh\necho hello from a layer\n');
  await chmod(join(base, 'bin/hello'), 0o755);
  await writeFile(join(base, 'usr/share/doc/README'), 'documentation the top layer deletes\n');
  await symlink('../bin/hello', join(base, 'etc/greeting'));

  const app = join(work, 'src', 'app');
  await mkdir(join(app, 'app'), { recursive: true });
  await mkdir(join(app, 'etc'), { recursive: true });
  await writeFile(join(app, 'app/server.js'), "console.log('serving');\n");
  await writeFile(join(app, 'app/config.json'), '{"port": 8080}\n');
  await writeFile(join(app, 'etc/motd'), 'Welcome to the app layer\n');

  // a whiteout, as image layers delete files of the layers below
  const cleanup = join(work, 'src', 'cleanup');
  await mkdir(join(cleanup, 'usr/share/doc'), { recursive: true });
  await writeFile(join(cleanup, 'usr/share/doc/.wh.README'), '');
  await mkdir(join(cleanup, 'var/log'), { recursive: true });
  await writeFile(join(cleanup, 'var/log/build.log'), 'built by the demo\n');
  return [base, app, cleanup];
}

/** Runs the demo, printing to `io.stdout`; resolves to an exit status. */
export async function runDemo(io: CliIo, run: RunCommand, opts: DemoOptions = {}): Promise<number> {
  const print = (line = ''): void => {
    io.stdout.write(`${line}\n`);
  };
  let stepNo = 0;
  const step = (text: string): void => {
    print();
    print(`${++stepNo}. ${text}`);
  };
  const work = await mkdtemp(join(opts.tmp ?? tmpdir(), 'graphdriver-demo-'));
  const root = join(work, 'store');
  const globals = ['--root', root, ...(opts.driver === undefined ? [] : ['--driver', opts.driver]), ...(opts.opts ?? []).flatMap((o) => ['--opt', o])];
  const shown = (argv: readonly string[]): string => argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');

  /** Runs `graphdriver <argv>` and shows it; resolves to its stdout. Throws when it fails. */
  const gd = async (argv: string[], show = true): Promise<string> => {
    if (show) print(`   $ graphdriver ${shown(argv)}`);
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => {
      text += d.toString();
    });
    const code = await run([...globals, ...argv], { ...io, stdout: out });
    out.end();
    if (show) for (const line of text.trimEnd().split('\n').filter((l) => l !== '')) print(`     ${line}`);
    if (code !== 0) throw new DemoFailed(`graphdriver ${shown(argv)} failed with status ${code}`);
    return text.trim();
  };

  const mounted: string[] = [];
  let status = 0;
  let shutDown = false;
  try {
    print('graphdriver demo: an image built here, imported, changed, diffed and applied again');
    print(`   scratch directory ${work} (removed at the end)`);

    step("the machine's storage driver (chosen as graphdriver chooses when none is named)");
    const st = JSON.parse(await gd(['status', '--json'], false)) as { driver: string; status: Array<[string, string]> };
    print(`   $ graphdriver ${shown(['status'])}`);
    print(`     Storage Driver: ${st.driver}`);
    for (const [k, v] of st.status.slice(0, 4)) print(`      ${k}: ${v}`);

    step('build a three-layer image with our own tooling: core\'s pack writes each layer tar, gzip-compressed into an OCI layout');
    const sources = await buildSources(work);
    const imageDir = join(work, 'image');
    const written = await writeOciLayout(
      imageDir,
      sources.map((s) => ({ tar: pack(s) as Readable, compression: 'gzip' as const })),
      'demo:latest',
    );
    for (const [i, s] of sources.entries()) {
      print(`   layer ${i + 1}: ${(await listTree(s)).filter((p) => !p.endsWith('/')).join(' ')}   (${written.layerDigests[i]!.slice(0, 19)}...)`);
    }
    print(`   ${imageDir}: OCI layout, manifest ${written.manifestDigest.slice(0, 19)}..., tag demo:latest`);

    step('import it: digests verified, each layer stored under its chain id');
    await gd(['import', imageDir]);
    await gd(['images']);

    step('a container layer on the image');
    await gd(['create', '--rw', '--parent', 'demo:latest', 'ctr']);

    step('mount it, write and delete files in it, unmount');
    const ctrPath = await gd(['mount', 'ctr']);
    mounted.push('ctr');
    print(`     + echo data > ${ctrPath}/app/data.txt`);
    await writeFile(join(ctrPath, 'app/data.txt'), 'written in the container\n');
    print(`     + edit ${ctrPath}/etc/motd`);
    await writeFile(join(ctrPath, 'etc/motd'), 'Welcome to the container, changed by the demo\n');
    print(`     + rm ${ctrPath}/bin/hello ${ctrPath}/app/config.json`);
    await unlink(join(ctrPath, 'bin/hello'));
    await unlink(join(ctrPath, 'app/config.json'));
    print(`     + mkdir ${ctrPath}/srv/cache`);
    await mkdir(join(ctrPath, 'srv/cache'), { recursive: true });
    print(`     ${ctrPath} now holds: ${(await listTree(ctrPath)).filter((p) => !p.endsWith('/')).join(' ')}`);
    await gd(['umount', 'ctr']);
    mounted.pop();

    step("the container layer's changes against the image");
    await gd(['changes', 'ctr']);

    step('its diff, a layer tar with whiteouts for the deleted files');
    const diffFile = join(work, 'ctr-diff.tar');
    await gd(['diff', 'ctr', '-o', diffFile]);

    step('apply that tar to a fresh layer on the image');
    await gd(['apply', '--parent', 'demo:latest', 'copy', diffFile]);
    await gd(['ls']);

    step('both trees are the same');
    const a = await gd(['mount', 'ctr'], false);
    mounted.push('ctr');
    const b = await gd(['mount', 'copy'], false);
    mounted.push('copy');
    const differences = await compareTrees(a, b);
    print(`   ctr  (${a}): ${(await listTree(a)).length} entries`);
    print(`   copy (${b}): ${(await listTree(b)).length} entries`);
    if (differences.length === 0) {
      print('   no differences: names, types, contents, link targets, modes, owners and file mtimes agree');
    } else {
      for (const d of differences) print(`   DIFFERENT ${d}`);
      status = 1;
    }
    const copyDiff = JSON.parse(await gd(['diff', 'copy', '-o', join(work, 'copy-diff.tar'), '--json'], false)) as { digest: string };
    const ctrDiff = JSON.parse(await gd(['diff', 'ctr', '-o', join(work, 'ctr-diff-again.tar'), '--json'], false)) as { digest: string };
    print(`   diff of ctr:  ${ctrDiff.digest}`);
    print(`   diff of copy: ${copyDiff.digest}${copyDiff.digest === ctrDiff.digest ? '  (the same tar, byte for byte)' : ''}`);
    await gd(['umount', 'copy'], false);
    mounted.pop();
    await gd(['umount', 'ctr'], false);
    mounted.pop();

    step('clean up');
    await gd(['rm', 'copy', 'ctr']);
    await gd(['rmi', 'demo:latest']);
    await gd(['ls']);
    await gd(['shutdown']);
    shutDown = true;
  } catch (err) {
    status = 1;
    io.stderr.write(`graphdriver demo: ${err instanceof Error ? err.message : String(err)}\n`);
  } finally {
    for (const id of mounted.reverse()) await gd(['umount', id], false).catch(() => undefined);
    // what the driver holds outside the scratch store (a devmapper pool) goes too
    if (!shutDown) await gd(['shutdown'], false).catch(() => undefined);
    if (opts.keep === true) {
      print(`   kept ${work}`);
    } else {
      // a mount left by a failed step must not take a recursive rm into the layers below it
      if ((await mountsUnder(work).catch(() => [])).length > 0) await unmountRecursive(work, { lazyFallback: true });
      await rm(work, { recursive: true, force: true });
      print(`   removed ${work}`);
    }
  }
  return status;
}
