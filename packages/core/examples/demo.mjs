#!/usr/bin/env node
// The quick-start demo of @graphdriver/core: detect the backing filesystem, pack a directory as a
// layer tar, unpack it elsewhere and prove both trees equal, then turn an overlay-format upper dir
// (whiteouts as 0/0 char devices, an opaque dir) into a layer tar with AUFS whiteouts and apply it.
// Every step prints what it did. Needs root (device nodes, owners, trusted.* xattrs).
import { createReadStream, createWriteStream } from 'node:fs';
import { cp, link, mkdir, mkdtemp, rm, stat, symlink, writeFile, chmod, lchown } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { execFileSync } from 'node:child_process';
import * as native from '@graphdriver/native';
import {
  changesDirs,
  getFsMagic,
  getFsName,
  listTar,
  pack,
  supportsDType,
  unpack,
} from '@graphdriver/core';

const step = (n, text) => console.log(`\n${n}. ${text}`);
const say = (text) => console.log(`   ${text}`);

// The entries of a tar file as core's own reader sees them (`tar -tv`).
const entriesOf = (file) => listTar(createReadStream(file));

function describe(e) {
  const type = { file: '-', dir: 'd', symlink: 'l', link: 'h', fifo: 'p', char: 'c', block: 'b' }[e.kind] ?? '?';
  const target = e.linkname ? ` -> ${e.linkname}` : '';
  const xattrs = e.xattrs.length > 0 ? `  [${e.xattrs.map(([name]) => name).join(', ')}]` : '';
  return `${type} ${e.mode.toString(8).padStart(4, '0')} ${e.uid}:${e.gid} ${String(e.size).padStart(5)}  ${e.name}${target}${xattrs}`;
}

const work = await mkdtemp(join(tmpdir(), 'graphdriver-demo-'));
try {
  console.log('graphdriver demo: what @graphdriver/core does on this machine');

  step(1, `backing filesystem of ${work}`);
  const magic = await getFsMagic(work);
  say(`${await getFsName(work)} (magic 0x${magic.toString(16)}), d_type: ${(await supportsDType(work)) ? 'yes' : 'no'}`);

  step(2, 'a source tree with what image layers contain');
  const src = join(work, 'src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await mkdir(join(src, 'usr/bin'), { recursive: true });
  await mkdir(join(src, 'var/cache'), { recursive: true });
  await writeFile(join(src, 'etc/motd'), 'Welcome to a layer\n');
  await writeFile(join(src, 'etc/hostname'), 'demo\n');
  await writeFile(join(src, 'usr/bin/tool'), '#!/bin/sh\necho tool\n');
  await lchown(join(src, 'usr/bin/tool'), 1000, 1000); // before chmod: chown clears setuid
  await chmod(join(src, 'usr/bin/tool'), 0o4755);
  native.lsetxattrSync(join(src, 'usr/bin/tool'), 'security.capability',
    Buffer.from('0100000200200000000000000000000000000000', 'hex')); // cap_net_bind_service, binary value
  await link(join(src, 'usr/bin/tool'), join(src, 'usr/bin/tool-alias'));
  await symlink('../usr/bin/tool', join(src, 'etc/tool-link'));
  execFileSync('mkfifo', [join(src, 'var/cache/fifo')]);
  await writeFile(join(src, 'var/cache/data'), 'cached\n');
  say('etc/{motd,hostname,tool-link}, usr/bin/tool (setuid, 1000:1000, security.capability) + a hard link, var/cache/{fifo,data}');

  step(3, 'pack it as a layer tar');
  const layerTar = join(work, 'layer.tar');
  await pipeline(pack(src), createWriteStream(layerTar));
  const entries = await entriesOf(layerTar);
  say(`${layerTar}: ${(await stat(layerTar)).size} bytes, ${entries.length} entries`);
  for (const h of entries) say(`  ${describe(h)}`);

  step(4, 'unpack it into an empty directory');
  const copy = join(work, 'copy');
  await mkdir(copy);
  const bytes = await unpack(copy, createReadStream(layerTar));
  say(`${bytes} bytes of file content written to ${copy}`);
  const cap = native.lgetxattrSync(join(copy, 'usr/bin/tool'), 'security.capability');
  say(`security.capability survived byte for byte: ${cap.toString('hex')}`);

  step(5, 'compare the two trees (changesDirs, moby\'s rules)');
  const diff = await changesDirs(copy, src);
  say(diff.length === 0 ? 'no changes: the copy is identical' : `DIFFERENT: ${JSON.stringify(diff)}`);
  if (diff.length !== 0) process.exitCode = 1;

  step(6, 'an overlay upper dir: etc/motd deleted (0/0 char device), var/cache made opaque with a new file');
  const upper = join(work, 'upper');
  await mkdir(join(upper, 'etc'), { recursive: true });
  await mkdir(join(upper, 'var/cache'), { recursive: true });
  native.mknodSync(join(upper, 'etc/motd'), native.S.IFCHR | 0o000, 0, 0);
  native.lsetxattrSync(join(upper, 'var/cache'), 'trusted.overlay.opaque', Buffer.from('y'));
  await writeFile(join(upper, 'var/cache/new'), 'fresh\n');
  const diffTar = join(work, 'diff.tar');
  await pipeline(pack(upper, { sourceWhiteouts: 'overlay' }), createWriteStream(diffTar));
  for (const e of await entriesOf(diffTar)) say(`  ${describe(e)}`);

  step(7, 'apply that diff to the copy, as a layer on top of it');
  const applied = await unpack(copy, createReadStream(diffTar), { whiteouts: 'apply' });
  const after = await changesDirs(copy, src);
  say(`${applied} bytes applied; the copy now differs from the source by:`);
  for (const c of after) say(`  ${c.kind.padEnd(6)} ${c.path}`);
} finally {
  await rm(work, { recursive: true, force: true });
  step(8, `removed ${work}`);
}
