/**
 * One archive operation in a process of its own, so that its peak RSS is the operation's own:
 *   archive-child.ts pack <src>              the layer tar on stdout (pack(): a tree walk)
 *   archive-child.ts addpath <src> <list>    the layer tar on stdout, one LayerTarWriter.addPath per
 *                                            line of <list> (what exportChanges does with a change list)
 *   archive-child.ts unpack <dst> <tar>      extract the tar file into dst
 * The result (`{ ms, userMs, sysMs, maxRssKiB, baseRssKiB, bytes }`, bytes being unpack's size) goes to fd 3 as
 * one JSON line. Time (wall and CPU) is taken after the modules are loaded (and the list is read), so node's and
 * tsx's start-up is not counted.
 */
import { createReadStream, readFileSync, writeSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { LayerTarWriter, pack, unpack } from '../src/archive/index.js';

const [op, a, b] = process.argv.slice(2);
const list = op === 'addpath' && b !== undefined ? readFileSync(b, 'utf8').split('\n').filter((l) => l !== '') : [];
const baseRssKiB = process.resourceUsage().maxRSS;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let bytes = 0;
if (op === 'pack' && a !== undefined) {
  await pipeline(pack(a), process.stdout);
} else if (op === 'addpath' && a !== undefined) {
  const writer = new LayerTarWriter();
  const out = pipeline(writer.stream, process.stdout);
  for (const rel of list) await writer.addPath(a, rel);
  await writer.finalize();
  await out;
} else if (op === 'unpack' && a !== undefined && b !== undefined) {
  bytes = await unpack(a, createReadStream(b, { highWaterMark: 256 * 1024 }));
} else {
  throw new Error(`usage: archive-child.ts pack <src> | addpath <src> <list> | unpack <dst> <tar> (got ${process.argv.slice(2).join(' ')})`);
}
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const userMs = cpu.user / 1000;
const sysMs = cpu.system / 1000;
writeSync(3, `${JSON.stringify({ ms, userMs, sysMs, maxRssKiB: process.resourceUsage().maxRSS, baseRssKiB, bytes })}\n`);
