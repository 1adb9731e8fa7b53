import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { configReference } from '../../src/cli/config-reference.js';
import { envName, flagName, OPTIONS } from '../../src/core/config.js';

const PAGE = join(import.meta.dirname, '..', '..', 'docs', 'configuration.md');

test('docs/configuration.md is the page generated from the option table (run `npm run docs:config` after changing an option)', () => {
  assert.equal(readFileSync(PAGE, 'utf8'), configReference());
});

test('the configuration reference lists every option with its flag and environment variable', () => {
  const page = configReference();
  for (const o of OPTIONS) {
    assert.ok(page.includes(`| \`${o.path}\` | \`${flagName(o.path)}\``), o.path);
    assert.ok(page.includes(`\`${envName(o.path)}\``), envName(o.path));
  }
});
