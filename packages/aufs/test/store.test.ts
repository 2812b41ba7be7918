/**
 * A store shaped as Docker's aufs driver leaves it, built by hand: layers files with one id per line
 * and a trailing newline, branches holding AUFS's own `.wh..wh.aufs`, `.wh..wh.plnk` and
 * `.wh..wh.orph` at the top, whiteouts that are hard links of `.wh..wh.aufs` (as the kernel's aufs
 * makes them), an opaque directory, an image, an init layer and a container layer, and the
 * `-removing` leftovers of an interrupted remove. The driver must read it as Docker would: the union
 * of the container, the diffs and changes of image layers, the layers file of a new layer; and it
 * must leave the image branches exactly as they were.
 */
import { link, mkdir, readFile, readdir, stat, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { assertSameTree, treeDigest } from '@graphdriver/graphtest';
import { FUSE_WORKDIR } from '../src/index.js';
import { codeOf, readBranch, readStream, start, tarEntries, withRoot } from './helpers.js';

interface Branch {
  [path: string]: string | { dir: number } | { whiteout: true };
}

/**
 * Writes a Docker-aufs branch: whiteouts as hard links of `.wh..wh.aufs`, and AUFS's metadata at the
 * top - except in a layer without parent, which aufs never mounts (moby serves it as its directory).
 */
async function writeBranch(dir: string, entries: Branch, metadata = true): Promise<void> {
  await mkdir(dir, { recursive: true });
  if (metadata) {
    await mkdir(join(dir, '.wh..wh.plnk'), { mode: 0o700 });
    await mkdir(join(dir, '.wh..wh.orph'), { mode: 0o700 });
    await writeFile(join(dir, '.wh..wh.aufs'), '', { mode: 0o444 });
  }
  await chmod(dir, 0o755);
  for (const [path, v] of Object.entries(entries)) {
    const p = join(dir, path);
    await mkdir(join(p, '..'), { recursive: true });
    if (typeof v === 'string') await writeFile(p, v);
    else if ('dir' in v) {
      await mkdir(p, { recursive: true });
      await chmod(p, v.dir);
    } else await link(join(dir, '.wh..wh.aufs'), p);
  }
}

async function buildDockerStore(home: string): Promise<void> {
  const layers: Array<[string, string[]]> = [
    ['L1', []],
    ['L2', ['L1']],
    ['L3', ['L2', 'L1']],
    ['C-init', ['L3', 'L2', 'L1']],
    ['C', ['C-init', 'L3', 'L2', 'L1']],
  ];
  await mkdir(join(home, 'layers'), { recursive: true });
  for (const [id, parents] of layers) {
    await writeFile(join(home, 'layers', id), parents.map((p) => `${p}\n`).join(''));
    await mkdir(join(home, 'mnt', id), { recursive: true });
  }
  await writeBranch(join(home, 'diff', 'L1'), {
    'bin/sh': '#!sh',
    'etc/passwd': 'root:x:0:0\n',
    'etc/hosts': '127.0.0.1 localhost\n',
    'usr/share/doc/a.txt': 'doc',
    tmp: { dir: 0o1777 },
  }, false);
  await writeBranch(join(home, 'diff', 'L2'), {
    'etc/.wh.hosts': { whiteout: true },
    'usr/share/.wh..wh..opq': { whiteout: true },
    'usr/share/new.txt': 'new',
    'var/log/x': 'log',
  });
  await writeBranch(join(home, 'diff', 'L3'), {
    'etc/passwd': 'root:x:0:0\nuser:x:1000:1000\n',
    '.wh.tmp': { whiteout: true },
  });
  await writeBranch(join(home, 'diff', 'C-init'), {
    '.dockerenv': '',
    'etc/hostname': 'c\n',
    'etc/resolv.conf': 'nameserver 1.1.1.1\n',
    'dev/console': '',
  });
  await writeBranch(join(home, 'diff', 'C'), {
    'root/.bash_history': 'ls\n',
    'etc/.wh.resolv.conf': { whiteout: true },
  });
  // an interrupted remove
  await mkdir(join(home, 'diff', 'gone-removing', 'x'), { recursive: true });
  await mkdir(join(home, 'mnt', 'gone-removing'), { recursive: true });
}

test('a store written by Docker\'s aufs driver is read as Docker reads it, and its image branches stay as they were', async () => {
  await withRoot(async (root) => {
    const home = join(root, 'aufs');
    await buildDockerStore(home);
    const before = new Map<string, Awaited<ReturnType<typeof treeDigest>>>();
    for (const id of ['L1', 'L2', 'L3', 'C-init']) before.set(id, await treeDigest(join(home, 'diff', id), { mtime: true }));

    const d = await start(root);
    try {
      assert.equal((await readdir(join(home, 'diff'))).sort(), ['C', 'C-init', 'L1', 'L2', 'L3'], 'the -removing leftovers are gone');
      assert.equal((await readdir(join(home, 'mnt'))).sort(), ['C', 'C-init', 'L1', 'L2', 'L3']);
      assert.equal((await d.listLayers()).sort(), ['C', 'C-init', 'L1', 'L2', 'L3']);
      assert.ok((await d.status()).some(([k, v]) => k === 'Dirs' && v === '5'));

      // the container's union: every whiteout and the opaque directory honoured, AUFS metadata hidden
      const p = await d.get('C');
      try {
        assert.equal((await readdir(p)).sort(), ['.dockerenv', 'bin', 'dev', 'etc', 'root', 'usr', 'var']);
        assert.equal((await readdir(join(p, 'etc'))).sort(), ['hostname', 'passwd']);
        assert.equal(await readFile(join(p, 'etc/passwd'), 'utf8'), 'root:x:0:0\nuser:x:1000:1000\n');
        assert.equal(await readdir(join(p, 'usr/share')), ['new.txt']);
        assert.equal(await readFile(join(p, 'root/.bash_history'), 'utf8'), 'ls\n');
        // the container goes on: a file added, one of the init layer deleted
        await writeFile(join(p, 'root/note'), 'n');
        await import('node:fs/promises').then((fs) => fs.rm(join(p, 'etc/hostname')));
      } finally {
        await d.put('C');
      }
      const c = (await readBranch(join(home, 'diff', 'C'))).map((e) => `${e.type} ${e.path}`);
      assert.equal(c, [
        'file .wh..wh.aufs',
        'dir .wh..wh.orph',
        'dir .wh..wh.plnk',
        'dir etc',
        'file etc/.wh.hostname',
        'file etc/.wh.resolv.conf',
        'dir root',
        'file root/.bash_history',
        'file root/note',
      ]);
      assert.is(await codeOf(stat(join(home, 'diff', 'C', FUSE_WORKDIR))), 'ENOENT');

      // an image layer with children: a read-only union of L3 over L2 and L1
      const l3 = await d.get('L3');
      try {
        assert.equal((await readdir(l3)).sort(), ['bin', 'etc', 'usr', 'var']);
        assert.equal((await readdir(join(l3, 'etc'))).sort(), ['passwd']);
      } finally {
        await d.put('L3');
      }

      // the diff of an image layer against its parent is its branch, AUFS metadata left out; the
      // whiteouts aufs made as hard links of the (left out) .wh..wh.aufs stay linked to each other,
      // as in moby's tar of the same branch (it tracks hard links by inode too)
      const tar = await tarEntries(await d.diff('L2', 'L1'));
      assert.equal(
        tar.map((e) => `${e.kind} ${e.name}${e.linkname === '' ? '' : ` -> ${e.linkname}`}`),
        [
          'dir etc/',
          'file etc/.wh.hosts',
          'dir usr/',
          'dir usr/share/',
          'link usr/share/.wh..wh..opq -> etc/.wh.hosts',
          'file usr/share/new.txt',
          'dir var/',
          'dir var/log/',
          'file var/log/x',
        ],
      );
      assert.equal(await d.changes('L2', 'L1'), [
        { path: '/etc', kind: 'modify' },
        { path: '/etc/hosts', kind: 'delete' },
        { path: '/usr', kind: 'modify' },
        { path: '/usr/share', kind: 'modify' },
        { path: '/usr/share/doc', kind: 'delete' },
        { path: '/usr/share/new.txt', kind: 'add' },
        { path: '/var', kind: 'add' },
        { path: '/var/log', kind: 'add' },
        { path: '/var/log/x', kind: 'add' },
      ]);
      assert.is(await d.diffSize('L2', 'L1'), 'new'.length + 'log'.length);
      const getter = await d.diffGetter('L2');
      try {
        assert.equal((await readStream(await getter.get('usr/share/new.txt'))).toString(), 'new');
      } finally {
        await getter.close();
      }
      // against a parent that is not the direct one: through the unions (moby's naive diff)
      assert.equal(
        (await d.changes('L3', 'L1')).map((c) => `${c.kind} ${c.path}`),
        ['modify /etc', 'delete /etc/hosts', 'modify /etc/passwd', 'delete /tmp', 'modify /usr', 'modify /usr/share', 'delete /usr/share/doc', 'add /usr/share/new.txt', 'add /var', 'add /var/log', 'add /var/log/x'],
      );

      // a layer of ours on the container: moby's layers file format
      await d.create('commit', 'C');
      assert.equal(await readFile(join(home, 'layers', 'commit'), 'utf8'), 'C\nC-init\nL3\nL2\nL1\n');
      assert.equal(await readFile(join(home, 'layers', 'L1'), 'utf8'), '', 'untouched');

      for (const [id, digest] of before) assertSameTree(await treeDigest(join(home, 'diff', id), { mtime: true }), digest, `Docker's branch ${id}`);

      await d.remove('commit');
      await d.remove('C');
      assert.equal((await readdir(join(home, 'diff'))).sort(), ['C-init', 'L1', 'L2', 'L3']);
      assert.equal((await readdir(join(home, 'mnt'))).sort(), ['C-init', 'L1', 'L2', 'L3']);
      assert.equal((await readdir(join(home, 'layers'))).sort(), ['C-init', 'L1', 'L2', 'L3']);
    } finally {
      await d.cleanup();
    }
  });
});

test.run();
