/** Size parsing and printing against go-units' own behaviour (RAMInBytes, FromHumanSize, HumanSize, BytesSize). */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InvalidOptionError } from '../src/errors.js';
import { bytesSize, formatGoG, fromHumanSize, humanSize, ramInBytes } from '../src/size.js';

const KiB = 1024;
const MiB = KiB * 1024;
const GiB = MiB * 1024;
const TiB = GiB * 1024;
const PiB = TiB * 1024;

test('ramInBytes: binary multiples, case-insensitive, b and ib optional', () => {
  const table: Array<[string, number]> = [
    ['0', 0],
    ['32', 32],
    ['32b', 32],
    ['32B', 32],
    ['32k', 32 * KiB],
    ['32K', 32 * KiB],
    ['32kb', 32 * KiB],
    ['32Kb', 32 * KiB],
    ['32KiB', 32 * KiB],
    ['512k', 512 * KiB],
    ['50M', 50 * MiB],
    ['32Mb', 32 * MiB],
    ['32mib', 32 * MiB],
    ['10G', 10 * GiB],
    ['20g', 20 * GiB],
    ['32Gb', 32 * GiB],
    ['1.5GiB', 1.5 * GiB],
    ['32Tb', 32 * TiB],
    ['2P', 2 * PiB],
    ['32.3', 32],
    ['32.3 mb', Math.trunc(32.3 * MiB)],
    ['0.5k', 512],
    ['.5M', MiB / 2],
    ['5.M', 5 * MiB],
    ['1 ', 1],
    ['2 GB', 2 * GiB],
    ['1e3', 1000],
    ['1e3k', 1000 * KiB],
    ['+5k', 5 * KiB],
  ];
  for (const [input, want] of table) assert.is(ramInBytes(input), want, input);
});

test('ramInBytes: what go-units refuses is an InvalidOptionError naming the key and the input', () => {
  const bad = ['', 'hello', 'KB', 'k', '-32', '-1k', ' 32 ', '32m b', '32  mb', '32bm', '32kbb', '32kx', '32x', '32 kib b', '32mbi', '0x10', '1,5G', '99999999P'];
  for (const input of bad) {
    try {
      ramInBytes(input, 'dm.basesize');
      assert.unreachable(`${JSON.stringify(input)} should be refused`);
    } catch (err) {
      assert.instance(err, InvalidOptionError, input);
      const e = err as InvalidOptionError;
      assert.is(e.key, 'dm.basesize');
      assert.is(e.code, 'ERR_GRAPHDRIVER_INVALID_OPTION');
      assert.ok(e.message.includes(JSON.stringify(input)), e.message);
    }
  }
});

test('fromHumanSize: decimal multiples (and the same lenient suffixes)', () => {
  assert.is(fromHumanSize('32'), 32);
  assert.is(fromHumanSize('32kB'), 32_000);
  assert.is(fromHumanSize('32KB'), 32_000);
  assert.is(fromHumanSize('32.5kB'), 32_500);
  assert.is(fromHumanSize('32MB'), 32_000_000);
  assert.is(fromHumanSize('1G'), 1e9);
  assert.is(fromHumanSize('2Tb'), 2e12);
  assert.is(fromHumanSize('32KiB'), 32_000, 'go-units takes "ib" with the decimal map too');
  assert.throws(() => fromHumanSize('32kbx'), (e: unknown) => e instanceof InvalidOptionError);
});

test('humanSize and bytesSize print as go-units does', () => {
  assert.is(humanSize(0), '0B');
  assert.is(humanSize(999), '999B');
  assert.is(humanSize(1000), '1kB');
  assert.is(humanSize(1024), '1.024kB');
  assert.is(humanSize(1e6), '1MB');
  assert.is(humanSize(1048576), '1.049MB');
  assert.is(humanSize(2 * 1e6), '2MB');
  assert.is(humanSize(3.42e9), '3.42GB');
  assert.is(humanSize(5.372e12), '5.372TB');
  assert.is(humanSize(2.22e15), '2.22PB');
  assert.is(humanSize(2746000), '2.746MB');
  assert.is(humanSize(999_999), '1000kB', '%.4g rounds 999.999 to 1000 without an exponent');
  assert.is(humanSize(1e21), '1ZB');
  assert.is(humanSize(1e28), '1e+04YB');
  assert.is(bytesSize(1024), '1KiB');
  assert.is(bytesSize(MiB), '1MiB');
  assert.is(bytesSize(1.5 * MiB), '1.5MiB');
  assert.is(bytesSize(3.42 * GiB), '3.42GiB');
  assert.is(bytesSize(5.372 * TiB), '5.372TiB');
  assert.is(bytesSize(2.22 * PiB), '2.22PiB');
  assert.is(bytesSize(1023), '1023B');
});

test('formatGoG follows Go %g: exponent when it is < -4 or >= precision, two-digit exponents', () => {
  assert.is(formatGoG(0.0001234, 4), '0.0001234');
  assert.is(formatGoG(0.00001234, 4), '1.234e-05');
  assert.is(formatGoG(12345, 4), '1.234e+04');
  assert.is(formatGoG(1234, 4), '1234');
  assert.is(formatGoG(1.5, 4), '1.5');
  assert.is(formatGoG(-5000, 4), '-5000');
  assert.is(formatGoG(1e100, 4), '1e+100');
  // Go rounds exact halves to even on the exact binary value; JS's toPrecision rounds them up.
  assert.is(formatGoG(12355, 4), '1.236e+04');
  assert.is(formatGoG(1.0005, 4), '1', '1.0005 is 1.000499999... in binary');
  assert.is(formatGoG(2.5, 1), '2');
  assert.is(formatGoG(3.5, 1), '4');
  assert.is(formatGoG(0.125, 2), '0.12');
  assert.is(formatGoG(99.995, 4), '100', '99.995 is 99.99500000000000454... in binary');
});

test('a parsed size prints back to the same value', () => {
  for (const s of ['1KiB', '1.5MiB', '3GiB', '512KiB']) assert.is(bytesSize(ramInBytes(s)), s);
});

test.run();
