/**
 * The archive benchmark: pack and unpack of 10,000 files of 64 bytes in 100 directories, and of
 * one 1 GiB file, each beside GNU tar -c / -x of the same tree in the same run, interleaved (the
 * order alternates per round), on a journaled ext4 loop image made for the run (the root fs has no
 * journal and does not reuse freed inodes for a minute, see /work/shared/BASELINE.md). A third
 * shape packs the small tree path by path through LayerTarWriter.addPath (what exportChanges does
 * with a change list), beside GNU tar --no-recursion -T of the same list.
 *
 * Ours runs in a child process (archive-child.ts) that times the operation itself and reports its
 * peak RSS; GNU tar runs under /usr/bin/time for its own. Both produce or consume the same bytes:
 * pack writes to a pipe this process drains, unpack reads the same tar file (ours, which GNU tar
 * reads as well). GNU tar gets --xattrs --xattrs-include=* because we read and write xattrs too.
 * Every extraction goes into a fresh directory; removal and `sync -f` happen outside the timing.
 * The 1-minute load average is recorded around each case: the machine is shared, read ratios
 * taken under load with care. With `profileDir`, each of our children writes a V8 CPU profile there.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { createWriteStream, mkdirSync, openSync, closeSync, writeFileSync, writeSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { pack } from '../src/archive/index.js';
import { createScratchFs } from '@graphdriver/testkit';

export interface Sample {
  ms: number;
  maxRssKiB: number;
  /** CPU time in user space and in the kernel (ours: of the operation alone, start-up excluded). */
  userMs: number;
  sysMs: number;
}

export interface CaseResult {
  name: string;
  ours: { minMs: number; medianMs: number; maxRssMiB: number; baseRssMiB: number; medianUserMs: number; medianSysMs: number; samples: number[] };
  gnuTar: { minMs: number; medianMs: number; maxRssMiB: number; medianUserMs: number; medianSysMs: number; samples: number[] };
  ratioMedian: number;
  ratioMin: number;
  /** 1-minute load average before and after the case's rounds. */
  load: [before: number, after: number];
}

const CHILD = fileURLToPath(new URL('./archive-child.ts', import.meta.url));
const GNU_XATTRS = ['--xattrs', '--xattrs-include=*'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Run a command, drain its stdout, resolve with its exit and what it wrote to fd 3 / stderr. */
function runProcess(cmd: string, args: string[], withFd3: boolean): Promise<{ ms: number; fd3: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe', withFd3 ? 'pipe' : 'ignore'] });
    let fd3 = '';
    let stderr = '';
    child.stdout?.on('data', () => undefined);
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    (child.stdio[3] as NodeJS.ReadableStream | null)?.on('data', (c: Buffer) => {
      fd3 += c.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const ms = performance.now() - t0;
      if (code !== 0) reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${stderr}`));
      else resolve({ ms, fd3, stderr });
    });
  });
}

let profileDir: string | undefined;

async function ours(op: 'pack' | 'addpath' | 'unpack', args: string[]): Promise<Sample & { baseRssKiB: number }> {
  const prof = profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${op}-${Date.now()}.cpuprofile`];
  const { fd3 } = await runProcess(process.execPath, [...prof, '--import', 'tsx', CHILD, op, ...args], true);
  const r = JSON.parse(fd3) as { ms: number; maxRssKiB: number; baseRssKiB: number; userMs: number; sysMs: number };
  return { ms: r.ms, maxRssKiB: r.maxRssKiB, baseRssKiB: r.baseRssKiB, userMs: r.userMs, sysMs: r.sysMs };
}

async function gnuTar(args: string[]): Promise<Sample> {
  const { ms, stderr } = await runProcess('/usr/bin/time', ['-f', 'maxrss=%M user=%U sys=%S', 'tar', ...GNU_XATTRS, ...args], false);
  const m = /maxrss=(\d+) user=([\d.]+) sys=([\d.]+)/.exec(stderr);
  return { ms, maxRssKiB: Number(m?.[1] ?? 0), userMs: Number(m?.[2] ?? 0) * 1000, sysMs: Number(m?.[3] ?? 0) * 1000 };
}

async function sh(cmd: string, ...args: string[]): Promise<void> {
  await runProcess(cmd, args, false);
}

/** The small tree; returns its paths in walk order (a directory before its files). */
async function makeSmallTree(root: string): Promise<string[]> {
  const data = Buffer.alloc(64, 0x61);
  const paths: string[] = [];
  for (let d = 0; d < 100; d++) {
    mkdirSync(`${root}/d${d}`, { recursive: true });
    paths.push(`d${d}`);
    for (let f = 0; f < 100; f++) {
      const fd = openSync(`${root}/d${d}/f${f}`, 'w');
      writeSync(fd, data);
      closeSync(fd);
      paths.push(`d${d}/f${f}`);
    }
  }
  return paths;
}

async function makeBigFile(path: string, bytes: number): Promise<void> {
  const block = Buffer.alloc(1 << 20);
  for (let i = 0; i < block.length; i++) block[i] = (i * 2654435761) >>> 24;
  const fd = openSync(path, 'w');
  try {
    for (let done = 0; done < bytes; done += block.length) writeSync(fd, block, 0, Math.min(block.length, bytes - done));
  } finally {
    closeSync(fd);
  }
}

export interface ArchiveBenchOptions {
  rounds: number;
  bigBytes: number;
  log: (line: string) => void;
  /** Only the cases whose name matches. */
  only?: RegExp;
  /** Write a CPU profile of each of our runs into this directory. */
  profileDir?: string;
}

export async function runArchiveBench(opts: ArchiveBenchOptions): Promise<{ fs: string; results: CaseResult[] }> {
  const fs = await createScratchFs('ext4', { size: `${Math.ceil((3 * opts.bigBytes) / 2 ** 30) + 2}G` });
  try {
    const w = fs.path;
    opts.log(`scratch: journaled ext4 loop image at ${w}`);
    profileDir = opts.profileDir;
    const smallPaths = await makeSmallTree(`${w}/small`);
    writeFileSync(`${w}/small.list`, `${smallPaths.join('\n')}\n`);
    mkdirSync(`${w}/big`);
    await makeBigFile(`${w}/big/file`, opts.bigBytes);
    await pipeline(pack(`${w}/small`), createWriteStream(`${w}/small.tar`));
    await pipeline(pack(`${w}/big`), createWriteStream(`${w}/big.tar`));
    await sh('sync', '-f', w);

    const cases: Array<{ name: string; ours: () => Promise<Sample & { baseRssKiB?: number }>; gnu: () => Promise<Sample>; after?: () => Promise<void> }> = [];
    let n = 0;
    const fresh = (): string => {
      const d = `${w}/x${n++}`;
      mkdirSync(d);
      return d;
    };
    let lastDst = '';
    const cleanup = async (): Promise<void> => {
      if (lastDst !== '') await sh('rm', '-rf', lastDst);
      lastDst = '';
      await sh('sync', '-f', w);
    };
    const smallLabel = '10k x 64 B files in 100 dirs';
    for (const [label, src, tar] of [
      [smallLabel, `${w}/small`, `${w}/small.tar`],
      [`one ${Math.round(opts.bigBytes / 2 ** 20)} MiB file`, `${w}/big`, `${w}/big.tar`],
    ] as const) {
      cases.push({
        name: `pack ${label}`,
        ours: () => ours('pack', [src]),
        gnu: () => gnuTar(['-C', src, '-cf', '-', '.']),
      });
      if (label === smallLabel) {
        cases.push({
          name: `pack via LayerTarWriter.addPath of 10k paths`,
          ours: () => ours('addpath', [src, `${w}/small.list`]),
          gnu: () => gnuTar(['-C', src, '--no-recursion', '-cf', '-', '-T', `${w}/small.list`]),
        });
      }
      cases.push({
        name: `unpack ${label}`,
        ours: () => {
          lastDst = fresh();
          return ours('unpack', [lastDst, tar]);
        },
        gnu: () => {
          lastDst = fresh();
          return gnuTar(['-C', lastDst, '-xpf', tar]);
        },
        after: cleanup,
      });
    }

    const results: CaseResult[] = [];
    for (const c of cases) {
      if (opts.only !== undefined && !opts.only.test(c.name)) continue;
      const loadBefore = loadavg()[0] as number;
      const o: Array<Sample & { baseRssKiB?: number }> = [];
      const g: Sample[] = [];
      for (let r = 0; r < opts.rounds; r++) {
        const order = r % 2 === 0 ? (['ours', 'gnu'] as const) : (['gnu', 'ours'] as const);
        for (const who of order) {
          if (who === 'ours') o.push(await c.ours());
          else g.push(await c.gnu());
          await (c.after ?? (() => sh('sync', '-f', w)))();
        }
        opts.log(`  ${c.name}: round ${r + 1}: ours ${o.at(-1)?.ms.toFixed(0)} ms, GNU tar ${g.at(-1)?.ms.toFixed(0)} ms`);
      }
      const om = o.map((s) => s.ms);
      const gm = g.map((s) => s.ms);
      results.push({
        name: c.name,
        ours: {
          minMs: Math.min(...om),
          medianMs: median(om),
          maxRssMiB: Math.max(...o.map((s) => s.maxRssKiB)) / 1024,
          baseRssMiB: Math.max(...o.map((s) => s.baseRssKiB ?? 0)) / 1024,
          medianUserMs: median(o.map((s) => s.userMs)),
          medianSysMs: median(o.map((s) => s.sysMs)),
          samples: om,
        },
        gnuTar: {
          minMs: Math.min(...gm),
          medianMs: median(gm),
          maxRssMiB: Math.max(...g.map((s) => s.maxRssKiB)) / 1024,
          medianUserMs: median(g.map((s) => s.userMs)),
          medianSysMs: median(g.map((s) => s.sysMs)),
          samples: gm,
        },
        ratioMedian: median(om) / median(gm),
        ratioMin: Math.min(...om) / Math.min(...gm),
        load: [loadBefore, loadavg()[0] as number],
      });
    }
    return { fs: 'ext4 (journaled, default mkfs.ext4) on a sparse loop image', results };
  } finally {
    await fs.dispose();
  }
}

export function formatTable(results: CaseResult[]): string {
  const rows = [
    ['benchmark', 'ours min / median', 'GNU tar min / median', 'ratio (median, min)', 'user + sys: ours / GNU', 'ours peak RSS', 'GNU tar RSS', 'load'],
    ...results.map((r) => [
      r.name,
      `${r.ours.minMs.toFixed(0)} / ${r.ours.medianMs.toFixed(0)} ms`,
      `${r.gnuTar.minMs.toFixed(0)} / ${r.gnuTar.medianMs.toFixed(0)} ms`,
      `${r.ratioMedian.toFixed(2)}x, ${r.ratioMin.toFixed(2)}x`,
      `${r.ours.medianUserMs.toFixed(0)}+${r.ours.medianSysMs.toFixed(0)} / ${r.gnuTar.medianUserMs.toFixed(0)}+${r.gnuTar.medianSysMs.toFixed(0)} ms`,
      `${r.ours.maxRssMiB.toFixed(0)} MiB (node alone ${r.ours.baseRssMiB.toFixed(0)})`,
      `${r.gnuTar.maxRssMiB.toFixed(1)} MiB`,
      `${r.load[0].toFixed(1)}-${r.load[1].toFixed(1)}`,
    ]),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] as string).length))) ?? [];
  const line = (row: string[]): string => `| ${row.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(rows[0] as string[]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.slice(1).map(line)].join('\n');
}
