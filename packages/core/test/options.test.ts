/** Driver option schemas: moby-style strings and objects, typed results, and errors that name key and value. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidOptionError } from '../src/errors.js';
import { defineOptions, parseBool, parseKeyValue, parseStorageOpt } from '../src/options.js';

const overlay = defineOptions({
  prefix: 'overlay',
  prefixAliases: ['overlay2'],
  keys: {
    mountopt: { type: 'string' },
    size: { type: 'size' },
    skip_mount_home: { type: 'boolean' },
    mount_program: { type: 'path' },
    imagestore: { type: 'list', items: 'path', aliases: ['additionalimagestore'] },
    inodes: { type: 'integer', min: 0 },
    force_mask: { type: 'integer', base: 8, min: 0, max: 0o7777 },
    whiteout: { type: 'enum', values: ['overlay', 'aufs'] },
  },
  defaults: { mountopt: 'nodev', skip_mount_home: false, whiteout: 'overlay', imagestore: [] },
});

/** The InvalidOptionError `fn` throws (fails the test when it throws something else or nothing). */
function optionError(fn: () => unknown): InvalidOptionError {
  try {
    fn();
  } catch (err) {
    assert.instance(err, InvalidOptionError);
    assert.is((err as InvalidOptionError).code, 'ERR_GRAPHDRIVER_INVALID_OPTION');
    return err as InvalidOptionError;
  }
  assert.unreachable('expected an InvalidOptionError');
  throw new Error('unreachable');
}

test('defaults apply when nothing is given', () => {
  const o = overlay.parse();
  assert.equal(o, {
    mountopt: 'nodev',
    size: undefined,
    skip_mount_home: false,
    mount_program: undefined,
    imagestore: [],
    inodes: undefined,
    force_mask: undefined,
    whiteout: 'overlay',
  });
  // The defaults are not shared with the result: changing one result changes no other.
  o.imagestore.push('/x');
  assert.equal(overlay.parse().imagestore, []);
});

test('the parsed object is typed from the schema', () => {
  const o = overlay.parse(['overlay.whiteout=aufs']);
  const whiteout: 'overlay' | 'aufs' = o.whiteout;
  const mountopt: string = o.mountopt;
  const skip: boolean = o.skip_mount_home;
  const stores: string[] = o.imagestore;
  const size: number | undefined = o.size;
  // @ts-expect-error a key without a default may be undefined
  const sizeNumber: number = o.size;
  // @ts-expect-error an enum is its values, not any string
  const wrong: 'x' = o.whiteout;
  assert.equal([whiteout, mountopt, skip, stores, size, sizeNumber, wrong], ['aufs', 'nodev', false, [], undefined, undefined, 'aufs']);
});

test('moby-style strings: prefix optional, alias prefixes, keys case-insensitive, values trimmed', () => {
  const o = overlay.parse([
    'overlay.mountopt=nodev,metacopy=on',
    'OVERLAY2.Size = 20G',
    'skip_mount_home=True',
    '.mount_program=/usr/bin/fuse-overlayfs',
    'overlay.inodes=100000',
    'overlay.force_mask=0755',
    'overlay.whiteout=aufs',
  ]);
  assert.is(o.mountopt, 'nodev,metacopy=on', 'only the first "=" splits');
  assert.is(o.size, 20 * 1024 ** 3);
  assert.is(o.skip_mount_home, true);
  assert.is(o.mount_program, '/usr/bin/fuse-overlayfs');
  assert.is(o.inodes, 100000);
  assert.is(o.force_mask, 0o755);
  assert.is(o.whiteout, 'aufs');
});

test('objects give the same result, with native booleans and numbers', () => {
  const fromObject = overlay.parse({ 'overlay.size': '20G', skip_mount_home: true, inodes: 100000, mountopt: 'nodev' });
  const fromStrings = overlay.parse(['overlay.size=20G', 'skip_mount_home=1', 'inodes=100000', 'mountopt=nodev']);
  assert.equal(fromObject, fromStrings);
  assert.is(overlay.parse({ size: 4096 }).size, 4096);
});

test('the last occurrence wins; lists accumulate and replace the default', () => {
  const o = overlay.parse(['mountopt=a', 'mountopt=b', 'imagestore=/s1, /s2/', 'additionalimagestore=/s3//x/..']);
  assert.is(o.mountopt, 'b');
  assert.equal(o.imagestore, ['/s1', '/s2', '/s3']);
});

test('an empty path means "not set"', () => {
  assert.is(overlay.parse(['mount_program=']).mount_program, undefined);
});

test('unknown keys are errors that name the key, also another driver\'s prefixed key', () => {
  let e = optionError(() => overlay.parse(['overlay.mountopts=nodev']));
  assert.is(e.key, 'overlay.mountopts');
  assert.match(e.message, /unknown option "overlay\.mountopts"/);
  assert.match(e.message, /mountopt/, 'lists the known keys');
  e = optionError(() => overlay.parse(['dm.basesize=20G']));
  assert.is(e.key, 'dm.basesize');
  e = optionError(() => overlay.parse({ nosuchkey: 'x' }));
  assert.is(e.key, 'nosuchkey');
});

test('bad values are errors that name key and value', () => {
  const cases: Array<[string, RegExp]> = [
    ['overlay.size=20X', /"overlay\.size".*"20X"|"20X".*"overlay\.size"/],
    ['overlay.size=-1G', /-1G/],
    ['skip_mount_home=yes', /"yes"/],
    ['skip_mount_home=tRUE', /"tRUE"/],
    ['mount_program=fuse-overlayfs', /not an absolute path/],
    ['imagestore=/ok,relative/dir', /not an absolute path/],
    ['inodes=-5', /at least 0/],
    ['inodes=12abc', /"12abc"/],
    ['inodes=1.5', /integer/],
    ['force_mask=0788', /base 8/],
    ['force_mask=17777', /at most/],
    ['whiteout=AUFS', /one of "overlay", "aufs"/],
  ];
  for (const [input, pattern] of cases) {
    const e = optionError(() => overlay.parse([input]));
    assert.is(e.key, parseKeyValue(input)[0], input);
    assert.match(e.message, pattern, input);
    assert.ok(e.message.includes(JSON.stringify(parseKeyValue(input)[1])), `${input}: ${e.message}`);
  }
  const e = optionError(() => overlay.parse({ size: -1 }));
  assert.is(e.key, 'size');
  assert.match(e.message, /-1/);
  optionError(() => overlay.parse({ inodes: 1.5 }));
  optionError(() => overlay.parse({ size: true }));
});

test('a string without "=" is an error naming it', () => {
  const e = optionError(() => overlay.parse(['overlay.mountopt']));
  assert.is(e.key, 'overlay.mountopt');
  assert.match(e.message, /key=value/);
});

test('parseBool is exactly Go\'s strconv.ParseBool set', () => {
  for (const t of ['1', 't', 'T', 'TRUE', 'true', 'True']) assert.is(parseBool(t), true, t);
  for (const f of ['0', 'f', 'F', 'FALSE', 'false', 'False']) assert.is(parseBool(f), false, f);
  for (const x of ['yes', 'no', 'on', 'off', 'tRUE', '', ' true', '2']) assert.is(parseBool(x), undefined, x);
});

test('schema mistakes are found when the schema is declared', () => {
  assert.throws(() => defineOptions({ prefix: 'x', keys: { a: { type: 'size' } }, defaults: { a: 'big' as unknown as number } }));
  assert.throws(() => defineOptions({ prefix: 'x', keys: { a: { type: 'string', aliases: ['b'] }, b: { type: 'string' } } }), /declared twice/);
});

test('cross-key validation runs after parsing and its error reaches the caller', () => {
  const dm = defineOptions({
    prefix: 'dm',
    keys: { basesize: { type: 'size' }, min_free_space: { type: 'integer', min: 0, max: 99 } },
    defaults: { basesize: 10 * 1024 ** 3 },
    validate: (o) => {
      if (o.basesize < 1024 ** 3) throw new InvalidOptionError('dm.basesize', `dm: basesize ${o.basesize} is below 1G`);
    },
  });
  assert.is(dm.parse(['dm.basesize=20G']).basesize, 20 * 1024 ** 3);
  assert.is(dm.parse(['DM.MIN_FREE_SPACE=10']).min_free_space, 10);
  const e = optionError(() => dm.parse(['dm.basesize=512M']));
  assert.is(e.key, 'dm.basesize');
});

test('parseStorageOpt: allowed keys only, case-insensitive, typed', () => {
  assert.equal(parseStorageOpt({ size: '50M' }, ['size']), { size: 50 * 1024 ** 2 });
  assert.equal(parseStorageOpt({ Size: '1G', INODES: '1000' }, ['size', 'inodes']), { size: 1024 ** 3, inodes: 1000 });
  assert.equal(parseStorageOpt(undefined, ['size']), {});
  let e = optionError(() => parseStorageOpt({ size: '50Q' }, ['size'], 'overlay'));
  assert.is(e.key, 'size');
  assert.match(e.message, /"50Q"/);
  e = optionError(() => parseStorageOpt({ size: '50M' }, [], 'vfs'));
  assert.is(e.key, 'size');
  assert.match(e.message, /vfs: unknown storage option "size" \(this driver takes none\)/);
  e = optionError(() => parseStorageOpt({ quota: '1' }, ['size']));
  assert.is(e.key, 'quota');
  e = optionError(() => parseStorageOpt({ inodes: '-1' }, ['inodes']));
  assert.is(e.key, 'inodes');
});

test.run();
