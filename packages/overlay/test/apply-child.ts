/**
 * A process that dies mid-apply, for diff.test.ts: it starts the driver on the root it is given,
 * creates layer `victim` on `base` and applies a tar that delivers its first entries and then never
 * ends. The test kills it (SIGKILL) once the entries are on disk in staging.
 *
 *   node --import tsx test/apply-child.ts <root>
 */
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buildTar } from '@graphdriver/graphtest';
import { init } from '../src/index.js';

const root = process.argv[2]!;
const d = await init({ home: join(root, 'overlay'), root, options: [] });
await d.create('victim', 'base');
const head = buildTar(Array.from({ length: 50 }, (_, i) => ({ name: `file-${i}`, type: 'file' as const, data: `content ${i}` })));
// the two zero blocks that end a tar are left out: the reader waits for more
const body = head.subarray(0, head.length - 1024);
const tar = new Readable({ read() {} });
tar.push(body);
console.log('applying');
await d.applyDiff('victim', 'base', tar);
console.log('the apply ended, which it must not');
