/**
 * The published SDK: `npm pack` of clients/js (its prepack builds the compiled modules and the
 * browser bundle with the package's own devDependencies) ships dist, the README and the LICENSE
 * only, declares what a published package needs, and, installed in an empty folder, works by
 * its name in Node against a real server. (Its own file: each pack builds, and the per-file
 * time budget holds one build.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { createServer } from '../../src/index.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

describe('the SDK package (herald-push-client)', () => {
  const SDK = join(ROOT, 'clients', 'js');
  let dir: string;
  let files: string[];
  let tarball: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-sdk-pack-'));
    // prepack builds the package (tsc and the esbuild browser bundle) with its own devDependencies.
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: SDK, maxBuffer: 16 << 20 });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    files = packed!.files.map((f) => f.path);
    tarball = join(dir, packed!.filename);
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('ships the compiled SDK, its types and the browser bundle with the license, and declares engines, repository, sideEffects and its build tools', () => {
    for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts', 'dist/client.d.ts', 'dist/herald-client.browser.js']) {
      assert.ok(files.includes(f), `the SDK tarball lacks ${f}`);
    }
    assert.deepEqual(
      files.filter((f) => !f.startsWith('dist/') && !['package.json', 'README.md', 'LICENSE'].includes(f)),
      [],
      'nothing but dist, the manifest, README and LICENSE',
    );
    const manifest = JSON.parse(readFileSync(join(SDK, 'package.json'), 'utf8')) as Record<string, any>;
    assert.equal(manifest.name, 'herald-push-client');
    assert.match(manifest.engines.node, /^>=\d+/);
    assert.match(manifest.repository.url, /github\.com/);
    assert.equal(manifest.repository.directory, 'clients/js');
    assert.equal(manifest.sideEffects, false);
    assert.ok(manifest.devDependencies.esbuild && manifest.devDependencies.typescript, 'its own build dependencies');
    assert.equal(manifest.dependencies, undefined, 'no runtime dependencies');
    assert.equal(manifest.exports['.'].browser, './dist/herald-client.browser.js');
  });

  test('installs offline in an empty folder and, imported by name in Node, connects to a server and sends rpc and send', async () => {
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'sdk-check', private: true, type: 'module' }));
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { cwd: app, maxBuffer: 16 << 20 });
    const server = createServer({ config: { port: 0, host: '127.0.0.1', dev: true, logLevel: 'silent', dataDir: join(dir, 'data') }, processMetrics: false });
    await server.listen();
    try {
      const script = `
        import { HeraldClient, HeraldClientError } from 'herald-push-client';
        import WebSocket from ${JSON.stringify(join(ROOT, 'node_modules', 'ws', 'wrapper.mjs'))};
        const client = new HeraldClient({ url: process.argv[1], user: 'pkg-user', transports: ['websocket'], WebSocket });
        await client.connect();
        const out = { transport: client.transport };
        for (const [name, call] of [['rpc', () => client.rpc('orders.list', { page: 1 })], ['send', () => client.send({ hello: 1 })]]) {
          try { await call(); out[name] = 'resolved'; } catch (err) { out[name] = err instanceof HeraldClientError ? err.errorName : String(err); }
        }
        client.disconnect();
        console.log(JSON.stringify(out));`;
      const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, server.url()], { cwd: app });
      // No backend is configured: both commands reach the server, which has neither hook.
      assert.deepEqual(JSON.parse(stdout), { transport: 'websocket', rpc: 'HERALD_ERR_UNKNOWN_COMMAND', send: 'HERALD_ERR_UNKNOWN_COMMAND' });
    } finally {
      await server.close();
    }
  });
});
