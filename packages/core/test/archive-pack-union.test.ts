/**
 * packUnion, unionChanges, unionFileBytes: what a driver's walk of a union of layer directories
 * sees, as a tar, as changes, as a size. A walk that shows two directories as one must give the tar
 * pack() gives of the same tree in one directory.
 */
import { linkSync, lutimesSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { buffer } from 'node:stream/consumers';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pack, packUnion, sortedNames, unionChanges, unionFileBytes, type UnionWalk } from '../src/archive/index.js';

/** A walk of `roots` with no whiteouts: each name seen in the first root that has it. */
function walkOf(roots: string[]): UnionWalk {
  return async (visit) => {
    const walk = async (rel: string): Promise<void> => {
      const where = new Map<string, string>();
      for (const root of roots) {
        let names: string[] = [];
        try {
          names = readdirSync(rel === '' ? root : `${root}/${rel}`);
        } catch {
          continue;
        }
        for (const n of names) if (!where.has(n)) where.set(n, root);
      }
      for (const name of sortedNames([...where.keys()])) {
        const childRel = rel === '' ? name : `${rel}/${name}`;
        const root = where.get(name)!;
        const isDir = statSync(`${root}/${childRel}`).isDirectory();
        const r = visit({ rel: childRel, root, isDir });
        if (r !== undefined) await r;
        if (isDir) await walk(childRel);
      }
    };
    await walk('');
  };
}

function withDirs(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync('/tmp/pack-union-');
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'two directories walked as one give the tar, changes and size of the same tree packed from one directory',
  withDirs(async (dir) => {
    for (const d of ['upper/etc', 'lower/etc', 'lower/usr/bin', 'whole/etc', 'whole/usr/bin']) mkdirSync(`${dir}/${d}`, { recursive: true });
    for (const base of ['upper', 'whole']) {
      writeFileSync(`${dir}/${base}/etc/hosts`, 'upper hosts\n');
      writeFileSync(`${dir}/${base}/big`, Buffer.alloc(300 * 1024, 7));
      linkSync(`${dir}/${base}/big`, `${dir}/${base}/big-link`);
    }
    for (const base of ['lower', 'whole']) {
      writeFileSync(`${dir}/${base}/usr/bin/tool`, '#!/bin/sh\n', { mode: 0o755 });
      symlinkSync('tool', `${dir}/${base}/usr/bin/alias`);
    }
    writeFileSync(`${dir}/lower/etc/hosts`, 'hidden by the upper\n');
    // the same times on both sides, so that the headers match
    const t = new Date('2024-01-02T03:04:05Z');
    for (const p of ['etc', 'usr', 'usr/bin', 'etc/hosts', 'big', 'big-link', 'usr/bin/tool', 'usr/bin/alias']) {
      for (const base of ['upper', 'lower', 'whole']) {
        try {
          (p.endsWith('alias') ? lutimesSync : utimesSync)(`${dir}/${base}/${p}`, t, t);
        } catch {
          /* not on this side */
        }
      }
    }
    const walk = walkOf([`${dir}/upper`, `${dir}/lower`]);
    const got = await buffer(packUnion(walk));
    const want = await buffer(pack(`${dir}/whole`));
    assert.ok(got.equals(want), 'the union tar is byte for byte the tar of the same tree');
    assert.equal(
      (await unionChanges(walk)).map((c) => `${c.kind} ${c.path}`),
      ['add /big', 'add /big-link', 'add /etc', 'add /etc/hosts', 'add /usr', 'add /usr/bin', 'add /usr/bin/alias', 'add /usr/bin/tool'],
    );
    assert.is(await unionFileBytes(walk), 300 * 1024 + 'upper hosts\n'.length + '#!/bin/sh\n'.length, 'a hard-linked file counts once, a symlink not at all');
  }),
);

test('a walk that fails destroys the tar stream with its error', async () => {
  const stream = packUnion(async () => {
    throw new Error('the walk broke');
  });
  await buffer(stream).then(
    () => assert.unreachable('the stream ended cleanly'),
    (e: Error) => assert.is(e.message, 'the walk broke'),
  );
});

test.run();
