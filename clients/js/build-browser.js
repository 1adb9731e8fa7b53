#!/usr/bin/env node
// Bundle the SDK into one ESM file for browsers (dist/herald-client.browser.js) with esbuild, a
// devDependency of this package (in a checkout it resolves from the root's node_modules too).
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
await build({
  entryPoints: [join(here, 'src/index.ts')],
  outfile: join(here, 'dist/herald-client.browser.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2020',
  sourcemap: true,
  logLevel: 'warning',
});
