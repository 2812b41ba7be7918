/**
 * The runner's accounting: pass, fail and the three ways to skip (asked by the caller, skipCase()
 * from a case, a not-supported error from the case or its setup), a teardown error turning any
 * outcome into a failure, `only`, the printed lines and the exact closing line CI greps.
 */
import { PassThrough } from 'node:stream';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NotSupportedError, QuotaNotSupportedError } from '@graphdriver/core';
import { caseMatches, parseSkipList, runCases, skipCase, type Case } from '../src/runner.js';

interface Ctx {
  name: string;
  torn: string[];
}

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

const torn: string[] = [];

function runner(cases: Case<Ctx>[], extra: { skip?: string[]; only?: string[]; setupFails?: Record<string, Error>; teardownFails?: string[] } = {}) {
  const out = capture();
  const report = runCases<Ctx>(cases, {
    label: 'demo',
    output: out.stream,
    ...(extra.skip === undefined ? {} : { skip: extra.skip }),
    ...(extra.only === undefined ? {} : { only: extra.only }),
    async setup(c) {
      const err = extra.setupFails?.[c.name];
      if (err !== undefined) throw err;
      return { name: c.name, torn };
    },
    async teardown(ctx) {
      torn.push(ctx.name);
      if (extra.teardownFails?.includes(ctx.name)) throw new Error(`leaked a mount in ${ctx.name}`);
    },
  });
  return { report, text: out.text };
}

const cases: Case<Ctx>[] = [
  { name: 'Passes', run: async () => undefined },
  {
    name: 'Fails',
    run: async () => {
      throw new Error('expected 21 changes, got 20');
    },
  },
  { name: 'SkipsItself', run: async () => skipCase('the driver has no such thing') },
  {
    name: 'NotSupported',
    run: async () => {
      throw new QuotaNotSupportedError('project quotas are not available on /x (ext4): no prjquota');
    },
  },
  { name: 'SetupNotSupported', run: async () => assert.unreachable('setup failed, the case must not run') },
  { name: 'AskedToSkip', run: async () => assert.unreachable('the caller skipped it') },
  { name: 'Leaks', run: async () => undefined },
  { name: 'Param(1)', run: async () => undefined },
  { name: 'Param(2)', run: async () => undefined },
];

test('each outcome is accounted for, a skip is never a pass, and the closing line has the exact shape', async () => {
  torn.length = 0;
  const { report, text } = runner(cases, {
    skip: ['AskedToSkip: the caller says why', 'Param: a whole family'],
    setupFails: { SetupNotSupported: new NotSupportedError('driver "x" is not installed') },
    teardownFails: ['Leaks'],
  });
  const r = await report;
  const by = Object.fromEntries(r.cases.map((c) => [c.name, c]));
  assert.is(by.Passes!.status, 'pass');
  assert.is(by.Fails!.status, 'fail');
  assert.match(by.Fails!.error!, /expected 21 changes, got 20/);
  assert.equal([by.SkipsItself!.status, by.SkipsItself!.reason], ['skip', 'the driver has no such thing']);
  assert.equal([by.NotSupported!.status, by.NotSupported!.reason], ['skip', 'project quotas are not available on /x (ext4): no prjquota']);
  assert.equal([by.SetupNotSupported!.status, by.SetupNotSupported!.reason], ['skip', 'driver "x" is not installed']);
  assert.equal([by.AskedToSkip!.status, by.AskedToSkip!.reason], ['skip', 'the caller says why']);
  assert.equal([by['Param(1)']!.status, by['Param(2)']!.status], ['skip', 'skip']);
  assert.is(by.Leaks!.status, 'fail', 'a case that passed but leaked fails');
  assert.match(by.Leaks!.error!, /teardown: .*leaked a mount in Leaks/);
  assert.equal([r.passed, r.failed, r.skipped], [1, 2, 6]);
  assert.is(r.driver, 'demo');
  // Teardown ran for every case whose setup succeeded and that was not skipped by the caller.
  assert.equal(torn, ['Passes', 'Fails', 'SkipsItself', 'NotSupported', 'Leaks']);

  const lines = text().trimEnd().split('\n');
  assert.is(lines.at(-1), 'demo: 1 passed, 2 failed, 6 skipped');
  assert.ok(lines.some((l) => /^ {2}pass {2}Passes \(\d+ ms\)$/.test(l)));
  assert.ok(lines.some((l) => /^ {2}FAIL {2}Fails \(\d+ ms\): Error: expected 21 changes, got 20$/.test(l)));
  assert.ok(lines.includes('  skip  NotSupported: project quotas are not available on /x (ext4): no prjquota'));
  assert.ok(lines.includes('  skip  AskedToSkip: the caller says why'));
});

test('only runs the named cases and families', async () => {
  const { report, text } = runner(cases, { only: ['Passes', 'Param'] });
  const r = await report;
  assert.equal(
    r.cases.map((c) => c.name),
    ['Passes', 'Param(1)', 'Param(2)'],
  );
  assert.ok(text().trimEnd().endsWith('demo: 3 passed, 0 failed, 0 skipped'));
});

test('selectors and skip entries are checked before anything runs', async () => {
  assert.throws(() => parseSkipList(['SetQuota']), /"<case>: <reason>"/);
  assert.throws(() => parseSkipList(['SetQuota:   ']), /"<case>: <reason>"/);
  assert.equal(parseSkipList(['DiffApply: too slow here']), [{ selector: 'DiffApply', reason: 'too slow here' }]);
  assert.ok(caseMatches('DiffApply(10)', 'DiffApply'));
  assert.ok(!caseMatches('DiffApplyN(10)', 'DiffApply'));
  assert.ok(!caseMatches('CreateEmptyish', 'CreateEmpty'));
  let ran = false;
  const err = await runCases([{ name: 'A', run: async () => void (ran = true) }], {
    label: 'x',
    output: null,
    only: ['Nope'],
    setup: async () => ({}),
    teardown: async () => undefined,
  }).catch((e: unknown) => e);
  assert.instance(err, TypeError);
  assert.match((err as Error).message, /no case is named "Nope"/);
  assert.is(ran, false);
});

test('an aborted run starts no further case and rejects with the reason', async () => {
  const ac = new AbortController();
  const started: string[] = [];
  const mk = (name: string): Case<object> => ({
    name,
    run: async () => {
      started.push(name);
      if (name === 'First') ac.abort(new Error('stop'));
    },
  });
  const err = await runCases([mk('First'), mk('Second')], {
    label: 'x',
    output: null,
    signal: ac.signal,
    setup: async () => ({}),
    teardown: async () => undefined,
  }).catch((e: unknown) => e);
  assert.is((err as Error).message, 'stop');
  assert.equal(started, ['First']);
});

test.run();
