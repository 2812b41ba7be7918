/** KeyedMutex: one at a time per key, FIFO, parallel across keys, nothing left behind. */
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KeyedMutex } from '../src/fs/index.js';

/** Fails unless `p` rejects with an error whose message matches `pattern`. */
async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.match(err instanceof Error ? err.message : String(err), pattern);
    return;
  }
  assert.unreachable(`expected a rejection matching ${pattern}`);
}

test('calls on one key never overlap and run in the order they asked', async () => {
  const m = new KeyedMutex();
  const order: number[] = [];
  let inside = 0;
  let maxInside = 0;
  await Promise.all(
    Array.from({ length: 50 }, (_, i) =>
      m.withLock('layer', async () => {
        inside++;
        maxInside = Math.max(maxInside, inside);
        // Later callers sleep less: without FIFO they would overtake.
        await sleep((50 - i) % 5);
        order.push(i);
        inside--;
      }),
    ),
  );
  assert.is(maxInside, 1);
  assert.equal(order, Array.from({ length: 50 }, (_, i) => i));
  assert.is(m.size, 0, 'no entry left once everyone is done');
});

test('different keys run in parallel', async () => {
  const m = new KeyedMutex();
  let inside = 0;
  let maxInside = 0;
  const t0 = Date.now();
  await Promise.all(
    ['a', 'b', 'c', 'd'].map((k) =>
      m.withLock(k, async () => {
        inside++;
        maxInside = Math.max(maxInside, inside);
        await sleep(50);
        inside--;
      }),
    ),
  );
  assert.is(maxInside, 4);
  assert.ok(Date.now() - t0 < 150, 'four 50ms sections on four keys take about 50ms, not 200ms');
  assert.is(m.size, 0);
});

test('a throwing section releases the lock and the error reaches its caller only', async () => {
  const m = new KeyedMutex();
  const failing = m.withLock('k', async () => {
    await sleep(5);
    throw new Error('boom');
  });
  const next = m.withLock('k', () => 'ran');
  await rejects(failing, /boom/);
  assert.is(await next, 'ran');
  assert.is(m.size, 0);
  // A synchronous throw too.
  await rejects(m.withLock('k', () => {
    throw new Error('sync');
  }), /sync/);
  assert.is(m.size, 0);
});

test('a waiter that gives up (AbortSignal) leaves the queue; the others keep their order', async () => {
  const m = new KeyedMutex();
  const ran: string[] = [];
  const ac = new AbortController();
  const first = m.withLock('k', async () => {
    await sleep(20);
    ran.push('first');
  });
  const quitter = m.withLock('k', () => ran.push('quitter'), { signal: ac.signal });
  const last = m.withLock('k', () => ran.push('last'));
  assert.is(m.waiting('k'), 2);
  ac.abort(new Error('gave up'));
  await rejects(quitter, /gave up/);
  assert.is(m.waiting('k'), 1);
  await Promise.all([first, last]);
  assert.equal(ran, ['first', 'last']);
  assert.is(m.size, 0);
  await rejects(m.withLock('k', () => 1, { signal: AbortSignal.abort(new Error('already')) }), /already/);
  assert.is(m.size, 0);
});

test('many keys churned leave no entries behind', async () => {
  const m = new KeyedMutex<number>();
  await Promise.all(Array.from({ length: 10_000 }, (_, i) => m.withLock(i % 1000, async () => undefined)));
  assert.is(m.size, 0);
  assert.not.ok(m.isLocked(5));
});

test.run();
