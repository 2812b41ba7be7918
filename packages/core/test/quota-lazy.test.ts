/** LazyQuotaControl: the detection runs once; every later request gets the same typed answer. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isNotSupported, QuotaNotSupportedError } from '../src/errors.js';
import { LazyQuotaControl } from '../src/quota/index.js';

test('a filesystem without project quotas: the same QuotaNotSupportedError for every request', async () => {
  const lazy = new LazyQuotaControl('/dev/shm', 'test');
  const first = lazy.control();
  assert.is(lazy.control(), first, 'detected once');
  const err = await first.catch((e: unknown) => e);
  assert.instance(err, QuotaNotSupportedError);
  assert.match((err as Error).message, /need xfs or ext4/);
  assert.is(await lazy.limit('/dev/shm/x', { size: 1 << 20 }).catch((e: unknown) => e), err);
});

test('a failure that is not a "not supported" becomes one, naming the driver and the directory', async () => {
  const err = await new LazyQuotaControl('/nonexistent/layers', 'test').control().catch((e: unknown) => e);
  assert.instance(err, QuotaNotSupportedError);
  assert.ok(isNotSupported(err));
  assert.match((err as Error).message, /^test: project quotas cannot be used on \/nonexistent\/layers: /);
  assert.ok((err as Error).cause !== undefined, 'the cause is kept');
});

test.run();
