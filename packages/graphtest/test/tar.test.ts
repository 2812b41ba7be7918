/**
 * The suite's own tar writer and lister, checked against GNU tar both ways: what buildTar writes
 * (long names through PAX, links, devices, truncation) is what GNU tar reads, and listTar reads
 * what GNU tar writes (GNU long names, PAX, every type).
 */
import { execFile, spawn } from 'node:child_process';
import { link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mknodSync, S } from '@graphdriver/native';
import { buildTar, listTar } from '../src/tar.js';

const run = promisify(execFile);

function gnuTar(args: string[], input: Buffer): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const p = spawn('tar', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => res({ code, stdout, stderr }));
    p.stdin.end(input);
  });
}

const long = `${'very-long-directory-name/'.repeat(6)}file`;

test('GNU tar reads what buildTar writes, long names and link targets included', async () => {
  const tar = buildTar([
    { name: 'dir/', type: 'dir', mode: 0o750, uid: 1, gid: 2 },
    { name: 'dir/file', type: 'file', data: 'hello', mode: 0o4755 },
    { name: long, type: 'file', data: 'x' },
    { name: 'sym', type: 'symlink', linkname: `../${long}` },
    { name: 'hard', type: 'link', linkname: 'dir/file' },
    { name: 'null', type: 'char', devmajor: 1, devminor: 3 },
    { name: 'fifo', type: 'fifo' },
  ]);
  const { code, stdout, stderr } = await gnuTar(['-tvf', '-', '--numeric-owner'], tar);
  assert.is(code, 0, stderr);
  const lines = stdout.trim().split('\n');
  assert.is(lines.length, 7);
  assert.match(lines[0]!, /^drwxr-x--- 1\/2 .* dir\/$/);
  assert.match(lines[1]!, /^-rwsr-xr-x 0\/0 +5 .* dir\/file$/);
  assert.ok(lines[2]!.endsWith(long));
  assert.ok(lines[3]!.endsWith(`sym -> ../${long}`));
  assert.ok(lines[4]!.endsWith('hard link to dir/file'));
  assert.match(lines[5]!, /^crw-r--r-- 0\/0 +1,3 /);
  assert.match(lines[6]!, /^prw-r--r-- /);
  assert.equal(
    listTar(tar).map((e) => [e.name, e.typeflag, e.linkname]),
    [
      ['dir/', '5', ''],
      ['dir/file', '0', ''],
      [long, '0', ''],
      ['sym', '2', `../${long}`],
      ['hard', '1', 'dir/file'],
      ['null', '3', ''],
      ['fifo', '6', ''],
    ],
  );
});

test('a truncated tar is one GNU tar refuses', async () => {
  const tar = buildTar([{ name: 'f', type: 'file', data: Buffer.alloc(5000, 1) }], { truncateTo: 512 + 1000 });
  assert.is(tar.length, 1512);
  const { code } = await gnuTar(['-tf', '-'], tar);
  assert.is.not(code, 0);
});

test('listTar reads GNU and PAX archives of every entry type', async () => {
  const base = await mkdtemp(join(tmpdir(), 'graphtest-tar-'));
  try {
    const src = join(base, 'src');
    await mkdir(join(src, long, '..'), { recursive: true });
    await writeFile(join(src, long), 'x');
    await writeFile(join(src, 'a'), 'abc');
    await link(join(src, 'a'), join(src, 'b'));
    await symlink('a', join(src, 's'));
    mknodSync(join(src, 'blk'), S.IFBLK | 0o600, 7, 1);
    for (const format of ['gnu', 'posix']) {
      const out = join(base, `${format}.tar`);
      await run('tar', ['-C', src, `--format=${format}`, '-cf', out, '.']);
      const entries = listTar(await readFile(out));
      const by = new Map(entries.map((e) => [e.name.replace(/^\.\//, ''), e]));
      assert.ok(by.has(long), `${format}: the long name`);
      const links = ['a', 'b'].map((n) => by.get(n)!).filter((e) => e.typeflag === '1');
      assert.is(links.length, 1, `${format}: one of a and b is a hard-link entry`);
      assert.match(links[0]!.linkname, /^(\.\/)?[ab]$/);
      assert.is(by.get('s')?.linkname, 'a');
      assert.equal([by.get('blk')?.typeflag, by.get('blk')?.devmajor, by.get('blk')?.devminor], ['4', 7, 1]);
    }
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test.run();
