/** hostRoot: the owner of a new layer's root under id mappings. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { hostRoot } from '../src/host-root.js';
import { InvalidOptionError } from '../src/errors.js';

test('0/0 without mappings; the host ids container root maps to; a typed error when root is not mapped', () => {
  assert.equal(hostRoot(undefined), { uid: 0, gid: 0 });
  assert.equal(hostRoot({ uidMap: [], gidMap: [] }), { uid: 0, gid: 0 });
  assert.equal(
    hostRoot({ uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 200000, size: 65536 }] }),
    { uid: 100000, gid: 200000 },
  );
  // a range that starts below 0 still covers container root
  assert.equal(hostRoot({ uidMap: [{ containerId: -5, hostId: 1000, size: 10 }], gidMap: [] }), { uid: 1005, gid: 0 });
  assert.throws(
    () => hostRoot({ uidMap: [{ containerId: 1, hostId: 100000, size: 10 }], gidMap: [] }),
    (e: unknown) => e instanceof InvalidOptionError && /do not map container root/.test((e as Error).message),
  );
});

test.run();
