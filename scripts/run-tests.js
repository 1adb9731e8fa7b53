#!/usr/bin/env node
// Runs the test suites named on the command line (folders under test/) with node's test runner
// and tsx for TypeScript. `node scripts/run-tests.js unit integration` runs test/unit and
// test/integration; extra arguments after `--` go to node --test (e.g. --test-name-pattern).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const suites = dash === -1 ? argv : argv.slice(0, dash);
const extra = dash === -1 ? [] : argv.slice(dash + 1);

function collect(dir) {
  if (!existsSync(dir)) return [];
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...collect(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const files = suites.flatMap((s) => (s.endsWith('.test.ts') ? [s] : collect(join('test', s))));
if (files.length === 0) {
  console.error(`no test files found for: ${suites.join(' ')}`);
  process.exit(1);
}
const concurrency = process.env.HERALD_TEST_CONCURRENCY ?? '2';
const res = spawnSync(process.execPath, ['--import', 'tsx', '--test', `--test-concurrency=${concurrency}`, '--test-timeout=300000', ...extra, ...files], {
  stdio: 'inherit',
});
process.exit(res.status ?? 1);
