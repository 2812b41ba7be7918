/**
 * The graphtest command: usage errors exit 2 before anything runs, a driver that is not installed
 * is a skip that says how to install it (exit 0, or 1 with --fail-on-skip), --json writes the
 * report. (The command against a real driver is the vfs package's conformance run.)
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const bin = resolve(dirname(fileURLToPath(import.meta.url)), '../src/bin.ts');
const tsx = import.meta.resolve('tsx');

function graphtest(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--import', tsx, bin, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => res({ code, stdout, stderr }));
  });
}

async function inEmptyDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'graphtest-bin-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('usage errors exit 2 and say what is wrong', async () => {
  await inEmptyDir(async (dir) => {
    const none = await graphtest([], dir);
    assert.is(none.code, 2);
    assert.match(none.stderr, /--driver is required/);
    const unknown = await graphtest(['--driver', 'vsf'], dir);
    assert.is(unknown.code, 2);
    assert.match(unknown.stderr, /unknown storage driver "vsf"/);
    const badSkip = await graphtest(['--driver', 'vfs', '--skip', 'SetQuota'], dir);
    assert.is(badSkip.code, 2);
    assert.match(badSkip.stderr, /"<case>: <reason>"/);
    const help = await graphtest(['--help'], dir);
    assert.is(help.code, 0);
    assert.match(help.stdout, /^usage: graphtest --driver NAME/);
  });
});

test('a driver that is not installed: every case skips with how to install it; --fail-on-skip makes that an error', async () => {
  await inEmptyDir(async (dir) => {
    const json = join(dir, 'report.json');
    const r = await graphtest(['--driver', 'vfs', '--only', 'CreateEmpty,Changes', '--json', json], dir);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {2}skip {2}CreateEmpty: storage driver "vfs" is not installed: pnpm add @graphdriver\/vfs$/m);
    assert.match(r.stdout, /^vfs: 0 passed, 0 failed, 2 skipped$/m);
    const report = JSON.parse(await readFile(json, 'utf8')) as { driver: string; cases: Array<{ status: string }> };
    assert.is(report.driver, 'vfs');
    assert.equal(report.cases.map((c) => c.status), ['skip', 'skip']);
    const strict = await graphtest(['--driver', 'vfs', '--only', 'CreateEmpty', '--fail-on-skip'], dir);
    assert.is(strict.code, 1);
  });
});

test.run();
