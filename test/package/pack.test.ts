/**
 * The published package: `npm pack` of the checkout, installed in an empty folder the way a user
 * installs it, must ship what a server needs (compiled code, the web pages, the SDK's browser
 * bundle) and nothing of the development tree, and its `herald` command must serve the chat and
 * the SDK bundle.
 *
 * The install runs offline: the folder gets a lockfile made of the checkout's own lockfile
 * entries for the runtime dependencies, so npm takes every tarball from its cache. Install
 * scripts are skipped: bufferutil ships prebuilt binaries, and better-sqlite3 (whose build
 * compiles SQLite from source for minutes) gets the native addon the checkout already built for
 * the same version and the same Node.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');

interface LockEntry {
  version?: string;
  dev?: boolean;
  link?: boolean;
  [key: string]: unknown;
}

/** A lockfile for a folder that depends only on the tarball: the checkout's runtime entries. */
function lockFor(tarball: string): object {
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const self = lock.packages['']!;
  const packages: Record<string, unknown> = {
    '': { name: 'install-check', dependencies: { 'herald-push': tarball } },
    'node_modules/herald-push': {
      version: self.version,
      resolved: tarball,
      license: self.license,
      dependencies: self.dependencies,
      bin: self.bin,
      engines: self.engines,
    },
  };
  for (const [path, entry] of Object.entries(lock.packages)) if (path && !entry.dev && !entry.link) packages[path] = entry;
  return { name: 'install-check', lockfileVersion: 3, requires: true, packages };
}

/** Wait for the "herald listening" log line; returns the port. */
async function listening(child: ChildProcess, output: () => string, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /"port":(\d+)[^\n]*herald listening/.exec(output());
    if (m) return Number(m[1]);
    if (child.exitCode !== null) throw new Error(`herald exited ${child.exitCode}: ${output()}`);
    if (Date.now() > deadline) throw new Error(`herald did not start: ${output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the npm package', () => {
  let dir: string;
  let files: string[];
  let tarball: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-pack-'));
    const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', dir], { cwd: ROOT, maxBuffer: 16 << 20 });
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    files = packed!.files.map((f) => f.path);
    tarball = `file:${join(dir, packed!.filename)}`;
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('ships the compiled server, the pages and the SDK browser bundle, not the development tree', () => {
    for (const f of [
      'bin/herald.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      'web/chat/index.html',
      'web/admin/index.html',
      'clients/js/dist/herald-client.browser.js',
      'README.md',
      'LICENSE',
    ]) {
      assert.ok(files.includes(f), `the tarball lacks ${f}`);
    }
    for (const prefix of ['src/', 'test/', 'bench/', '.ci/', 'scripts/', 'examples/', 'node_modules/']) {
      assert.deepEqual(
        files.filter((f) => f.startsWith(prefix)),
        [],
        `the tarball ships ${prefix}`,
      );
    }
  });

  test('installs offline in an empty folder, imports through its exports map and serves the chat and the SDK bundle', async () => {
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'install-check', private: true, type: 'module', dependencies: { 'herald-push': tarball } }),
    );
    writeFileSync(join(app, 'package-lock.json'), JSON.stringify(lockFor(tarball)));
    await run('npm', ['ci', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: app, maxBuffer: 16 << 20 });

    const sqlite = 'node_modules/better-sqlite3';
    const version = (p: string): string => (JSON.parse(readFileSync(join(p, sqlite, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(version(app), version(ROOT), 'the borrowed addon must match the installed better-sqlite3');
    mkdirSync(join(app, sqlite, 'build/Release'), { recursive: true });
    copyFileSync(join(ROOT, sqlite, 'build/Release/better_sqlite3.node'), join(app, sqlite, 'build/Release/better_sqlite3.node'));

    const imported = await run(
      process.execPath,
      ['--input-type=module', '-e', "import { createServer, OPTIONS } from 'herald-push'; console.log(typeof createServer, OPTIONS.length > 0);"],
      { cwd: app },
    );
    assert.equal(imported.stdout.trim(), 'function true');
    await assert.rejects(
      run(process.execPath, ['--input-type=module', '-e', "import 'herald-push/dist/core/core.js';"], { cwd: app }),
      /ERR_PACKAGE_PATH_NOT_EXPORTED/,
    );

    const child = spawn(join(app, 'node_modules/.bin/herald'), ['serve', '--dev', '--port', '0', '--data-dir', join(app, 'data')], {
      cwd: app,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      const base = `http://127.0.0.1:${await listening(child, () => out)}`;
      const chat = await fetch(`${base}/`);
      assert.equal(chat.status, 200);
      assert.match(await chat.text(), /<html/i);
      const sdk = await fetch(`${base}/sdk/herald-client.js`);
      assert.equal(sdk.status, 200);
      assert.match(sdk.headers.get('content-type') ?? '', /javascript/);
      assert.match(await sdk.text(), /HeraldClient/);
      const ready = await fetch(`${base}/health`);
      assert.equal(ready.status, 200);
    } finally {
      child.kill('SIGTERM');
    }
    assert.equal(await exited, 0, out);
  });
});
