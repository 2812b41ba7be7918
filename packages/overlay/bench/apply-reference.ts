/**
 * The extraction reference of the issue's target ("DiffApplyN(10000) at or below GNU tar's
 * extraction of the same files"), in the same run and on the same filesystem: the tar of
 * DiffApply10000's upper layer (100 directories x 100 files of 64 bytes) extracted by GNU tar -x
 * into a fresh directory, and by our applyDiff into a fresh layer (against its own parent, and
 * without parent as the benchmark does), interleaved, `rounds` times each.
 */
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fixtures } from '@graphdriver/graphtest';
import { init, type OverlayDriver } from '../src/index.js';

export interface ApplyReferenceRow {
  what: string;
  /** Nanoseconds. */
  min: number;
  median: number;
}

function tarExtract(tarFile: string, dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('tar', ['-C', dir, '-xf', tarFile], { stdio: 'ignore' });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar -x exited ${code}`))));
  });
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export async function applyReference(dir: string, rounds: number, print: (s: string) => void = (s) => console.log(s)): Promise<ApplyReferenceRow[]> {
  const root = join(dir, 'apply-reference');
  await mkdir(root, { recursive: true });
  const d = (await init({ home: join(root, 'overlay'), root, options: [] })) as OverlayDriver;
  try {
    await d.create('base');
    await fixtures.addManyFiles(d, 'base', 10000, 3);
    await d.create('upper', 'base');
    await fixtures.addManyFiles(d, 'upper', 10000, 6);
    const tar = await readAll(await d.diff('upper', 'base'));
    const tarFile = join(root, 'upper.tar');
    await writeFile(tarFile, tar);
    const samples = new Map<string, number[]>();
    const time = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      const t = process.hrtime.bigint();
      await fn();
      const s = samples.get(what) ?? [];
      s.push(Number(process.hrtime.bigint() - t));
      samples.set(what, s);
    };
    for (let r = 0; r < rounds; r++) {
      const target = join(root, `gnu-${r}`);
      await mkdir(target);
      await time('GNU tar -x (the same tar, a fresh dir)', () => tarExtract(tarFile, target));
      await d.create(`own-${r}`, 'base');
      await time('applyDiff, its own parent given', () => d.applyDiff(`own-${r}`, 'base', Readable.from([tar])));
      await d.create(`none-${r}`, 'base');
      await time('applyDiff, no parent (as DiffApplyN)', () => d.applyDiff(`none-${r}`, undefined, Readable.from([tar])));
    }
    const rows: ApplyReferenceRow[] = [];
    print(`\nextracting 10,000 files of 64 bytes (${(tar.length / 1e6).toFixed(1)} MB of tar), ${rounds} rounds, min / median`);
    for (const [what, s] of samples) {
      const sorted = [...s].sort((a, b) => a - b);
      const row = { what, min: sorted[0]!, median: sorted[Math.floor(sorted.length / 2)]! };
      rows.push(row);
      print(`  ${what.padEnd(40)} ${(row.min / 1e6).toFixed(0).padStart(5)} ms / ${(row.median / 1e6).toFixed(0)} ms`);
    }
    return rows;
  } finally {
    await d.cleanup();
    await rm(root, { recursive: true, force: true });
  }
}
