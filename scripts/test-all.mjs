#!/usr/bin/env node
// Runs every package's tests through nx (one package at a time: tests mount filesystems and use loop
// devices, and a leftover-mount check of one package must not see another's), shows their output as
// it comes, and closes with one line summed over all packages: `N passed, N failed`.
import { spawn } from 'node:child_process';

const args = ['exec', 'nx', 'run-many', '-t', 'test', '--output-style=static', '--parallel=1', '--skip-nx-cache'];
const child = spawn('pnpm', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });

const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, '');
const results = new Map(); // project -> { total, passed, skipped, sawSummary }
const conformance = []; // graphtest's closing lines, one per driver run: `vfs: N passed, N failed, N skipped`
let current;
let buffered = '';

function onLine(line) {
  const plain = strip(line);
  const start = /> nx run ([^:\s]+):test/.exec(plain);
  if (start) {
    current = start[1];
    results.set(current, { total: 0, passed: 0, skipped: 0, sawSummary: false });
    return;
  }
  if (!current) return;
  if (/^[a-z0-9][\w-]*: \d+ passed, \d+ failed, \d+ skipped$/.test(plain.trim())) conformance.push(plain.trim());
  const r = results.get(current);
  const m = /^\s*(Total|Passed|Skipped):\s+(\d+)/.exec(plain);
  if (m) {
    r[m[1].toLowerCase()] += Number(m[2]);
    if (m[1] === 'Total') r.sawSummary = true;
  }
}

for (const stream of [child.stdout, child.stderr]) {
  stream.on('data', (chunk) => {
    (stream === child.stdout ? process.stdout : process.stderr).write(chunk);
    buffered += chunk.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    lines.forEach(onLine);
  });
}

child.on('close', (code) => {
  if (buffered) onLine(buffered);
  let passed = 0;
  let failed = 0;
  console.log('');
  if (conformance.length > 0) {
    console.log('conformance (graphtest) per driver:');
    for (const line of conformance) console.log(`  ${line}`);
  }
  for (const [project, r] of results) {
    // A package whose test run died before uvu's summary counts as one failure.
    const f = r.sawSummary ? r.total - r.passed - r.skipped : Math.max(1, r.total - r.passed - r.skipped);
    passed += r.passed;
    failed += f;
    console.log(`${project}: ${r.passed} passed, ${f} failed, ${r.skipped} skipped`);
  }
  if (code !== 0 && failed === 0) failed = 1; // nx failed outside any test (a build step, a crash)
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(code !== 0 || failed > 0 ? 1 : 0);
});
