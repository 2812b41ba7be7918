/**
 * One archive operation in a process of its own, so that its peak RSS is the operation's own:
 *   archive-child.ts pack <src>            the layer tar on stdout
 *   archive-child.ts unpack <dst> <tar>    extract the tar file into dst
 * The result (`{ ms, maxRssKiB, baseRssKiB, bytes }`, bytes being unpack's size) goes to fd 3 as one JSON line. Time is taken
 * after the modules are loaded, so node's and tsx's start-up is not counted.
 */
import { createReadStream, writeSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { pack, unpack } from '../src/archive/index.js';

const [op, a, b] = process.argv.slice(2);
const baseRssKiB = process.resourceUsage().maxRSS;
const t0 = performance.now();
let bytes = 0;
if (op === 'pack' && a !== undefined) {
  await pipeline(pack(a), process.stdout);
} else if (op === 'unpack' && a !== undefined && b !== undefined) {
  bytes = await unpack(a, createReadStream(b, { highWaterMark: 256 * 1024 }));
} else {
  throw new Error(`usage: archive-child.ts pack <src> | unpack <dst> <tar> (got ${process.argv.slice(2).join(' ')})`);
}
const ms = performance.now() - t0;
writeSync(3, `${JSON.stringify({ ms, maxRssKiB: process.resourceUsage().maxRSS, baseRssKiB, bytes })}\n`);
