/**
 * The `herald` CLI as a child process: help, config validation, layering of file, env and
 * flags, the loopback/API-key rule and graceful shutdown on SIGTERM.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { envName, flagName, OPTIONS } from '../../src/index.js';
import { WsClient } from '../helpers/clients.js';

const ENTRY = join(import.meta.dirname, '..', 'helpers', 'herald-cli.ts');

/** The environment without any HERALD_* variable of the developer's shell. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  return { ...env, ...extra };
}

interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Each spawned server gets its own data directory (embedded stores must not share files). */
let dataDirs = 0;
function run(args: string[], env: Record<string, string> = {}, cwd?: string): Run {
  const dataDir = join(tmpdir(), `herald-cli-data-${process.pid}-${++dataDirs}`);
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], { env: cleanEnv({ HERALD_DATA_DIR: dataDir, ...env }), cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  child.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  const r: Run = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on('data', (d: Buffer) => (r.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (r.stderr += d.toString()));
  return r;
}

/** Wait for the "listening" log line; returns the port. */
async function listening(r: Run, timeoutMs = 45_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /"port":(\d+)[^\n]*herald listening/.exec(r.stdout);
    if (m) return Number(m[1]);
    if (r.child.exitCode !== null) throw new Error(`herald exited ${r.child.exitCode}: ${r.stderr}${r.stdout}`);
    if (Date.now() > deadline) throw new Error(`herald did not start: ${r.stderr}${r.stdout}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** A port that was free a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

describe('herald CLI', () => {
  let dir: string;
  const running: Run[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'herald-cli-'));
  });
  afterEach(async () => {
    for (const r of running.splice(0)) {
      if (r.child.exitCode === null && r.child.signalCode === null) {
        r.child.kill('SIGKILL');
        await r.exited;
      }
    }
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  test('--help lists every option with its flag, environment variable and default', async () => {
    const r = run(['--help']);
    const { code } = await r.exited;
    assert.equal(code, 0);
    for (const o of OPTIONS) {
      assert.ok(r.stdout.includes(flagName(o.path)), `help lacks ${flagName(o.path)}`);
      assert.ok(r.stdout.includes(envName(o.path)), `help lacks ${envName(o.path)}`);
      assert.ok(r.stdout.includes(o.doc), `help lacks the doc of ${o.path}`);
    }
    for (const general of ['--config', '--help', '--version', 'serve']) assert.ok(r.stdout.includes(general), general);
  });

  test('an invalid configuration reports every error at once and exits non-zero', async () => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ limits: { maxConnections: 0 }, colour: 'blue' }));
    const r = run(['--config', file, '--port', 'abc', '--no-such-flag', '1'], { HERALD_TIMING_PING_INTERVAL_MS: '10' });
    const { code } = await r.exited;
    assert.notEqual(code, 0);
    assert.equal(code, 2);
    for (const needle of ['--port', '--no-such-flag', 'limits.maxConnections', 'colour', 'timing.pingIntervalMs']) {
      assert.ok(r.stderr.includes(needle), `stderr lacks ${needle}: ${r.stderr}`);
    }
    assert.equal(r.stdout.includes('listening'), false);
  });

  test('a config file is layered under HERALD_* variables, which are layered under flags', async () => {
    const [filePort, envPort, flagPort] = [await freePort(), await freePort(), await freePort()];
    const file = join(dir, 'herald.config.json');
    writeFileSync(file, JSON.stringify({ port: filePort, dev: true, timing: { pingIntervalMs: 1_000 } }));

    const envWins = run(['--config', file], { HERALD_PORT: String(envPort) });
    running.push(envWins);
    assert.equal(await listening(envWins), envPort, 'env beats the file');
    const c1 = await WsClient.open(`ws://127.0.0.1:${envPort}/connection/websocket`);
    assert.equal((await c1.ok('connect')).ping, 1_000, 'the file beats the defaults');
    await c1.close();
    envWins.child.kill('SIGTERM');
    await envWins.exited;

    const flagWins = run(['serve', '--config', file, '--port', String(flagPort), '--timing.ping-interval-ms', '2000'], { HERALD_PORT: String(envPort), HERALD_TIMING_PING_INTERVAL_MS: '1500' });
    running.push(flagWins);
    assert.equal(await listening(flagWins), flagPort, 'flags beat env');
    const c2 = await WsClient.open(`ws://127.0.0.1:${flagPort}/connection/websocket`);
    const r2 = await c2.ok('connect', { user: 'u' });
    assert.equal(r2.ping, 2_000, 'flag beats env for ping interval');
    assert.equal(r2.user, 'u', 'dev mode from the file');
    await c2.close();
  });

  test('an environment variable overrides the file default for a nested option', async () => {
    const file = join(dir, 'nested.json');
    writeFileSync(file, JSON.stringify({ port: 0, timing: { pingIntervalMs: 1_000 } }));
    const r = run(['--config', file], { HERALD_TIMING_PING_INTERVAL_MS: '1500' });
    running.push(r);
    const port = await listening(r);
    const c = await WsClient.open(`ws://127.0.0.1:${port}/connection/websocket`);
    assert.equal((await c.ok('connect')).ping, 1_500);
    await c.close();
  });

  test('listening beyond loopback without an apiKey refuses to start', async () => {
    const r = run(['--host', '0.0.0.0', '--port', '0']);
    const { code } = await r.exited;
    assert.equal(code, 2);
    assert.match(r.stderr, /apiKey/);
    assert.match(r.stderr, /HERALD_API_KEY/);
  });

  test('-h, and each command has its own help', async () => {
    const short = run(['-h']);
    assert.equal((await short.exited).code, 0);
    assert.match(short.stdout, /Usage: herald \[serve\|dispatch\|token\]/);
    const dispatch = run(['dispatch', '--help']);
    assert.equal((await dispatch.exited).code, 0);
    assert.match(dispatch.stdout, /Usage: herald dispatch/);
    assert.ok(dispatch.stdout.includes('--dispatch.strategy'));
    assert.equal(dispatch.stdout.includes('--im.sync-limit'), false, 'the dispatcher help lists only what it reads');
    const token = run(['token', '--help']);
    assert.equal((await token.exited).code, 0);
    assert.match(token.stdout, /Usage: herald token --user/);
  });

  test('a bad value is reported once, an unknown flag or command with the closest name, and nothing starts', async () => {
    const r = run(['--port', 'abc', '--prot', '80']);
    assert.equal((await r.exited).code, 2);
    assert.equal(r.stderr.split('--port').length - 1, 2, `--port: once as the bad value, once as the suggestion: ${r.stderr}`);
    assert.match(r.stderr, /--prot: unknown option \(did you mean --port\?\)/);
    const c = run(['serv']);
    assert.equal((await c.exited).code, 2);
    assert.match(c.stderr, /unknown command "serv" \(did you mean serve\?\)/);
  });

  test('a port in use exits 2 with a clear message', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const r = run(['--port', String(port)]);
      assert.equal((await r.exited).code, 2);
      assert.match(r.stderr, new RegExp(`cannot listen: 127\\.0\\.0\\.1:${port} is already in use`));
    } finally {
      blocker.close();
    }
  });

  test('an IM store that cannot open fails the start with exit 2: unusable data directory, unreachable PostgreSQL', async () => {
    const notADir = join(dir, 'a-file');
    writeFileSync(notADir, 'x');
    const sqlite = run(['--port', '0'], { HERALD_DATA_DIR: join(notADir, 'data') });
    assert.equal((await sqlite.exited).code, 2);
    assert.match(sqlite.stderr, /cannot open the IM store in SQLite/);
    const blocker = await freePort();
    const pg = run(['--port', '0', '--database', `postgres://herald@127.0.0.1:${blocker}/herald`]);
    assert.equal((await pg.exited).code, 2);
    assert.match(pg.stderr, /cannot open the IM store in PostgreSQL/);
    assert.equal(pg.stdout.includes('listening'), false);
  });

  test('booleans without a default are settable from env and flags: web.chat serves the chat outside dev mode', async () => {
    const r = run(['--port', '0', '--no-web.admin'], { HERALD_WEB_CHAT: 'true' });
    running.push(r);
    const port = await listening(r);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/admin`)).status, 404);
  });

  test('the listening line carries the startup summary: version, URL, engines, data path, dev mode and page URLs', async () => {
    const r = run(['--port', '0', '--dev']);
    running.push(r);
    const port = await listening(r);
    const line = JSON.parse(r.stdout.split('\n').find((l) => l.includes('herald listening'))!) as Record<string, unknown>;
    assert.match(String(line.version), /^\d+\.\d+\.\d+/);
    assert.equal(line.url, `http://127.0.0.1:${port}`);
    assert.equal(line.chatUrl, `http://127.0.0.1:${port}/`);
    assert.equal(line.adminUrl, `http://127.0.0.1:${port}/admin`);
    assert.equal(line.dev, true);
    assert.match(String((line.engines as { imStore: string }).imStore), /^sqlite .*herald\.db$/);
    assert.equal((line.engines as { broker: string }).broker, 'memory (this process)');
  });

  test('--log-format pretty prints a readable summary and plain log lines instead of JSON', async () => {
    const r = run(['--port', '0', '--dev', '--log-format', 'pretty']);
    running.push(r);
    const deadline = Date.now() + 45_000;
    while (!/Admin\s+http:\/\/127\.0\.0\.1:\d+\/admin/.test(r.stdout)) {
      assert.ok(Date.now() < deadline && r.child.exitCode === null, `no summary: ${r.stderr}${r.stdout}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    assert.match(r.stdout, /Herald \d+\.\d+\.\d+/);
    assert.match(r.stdout, /Chat\s+http:\/\/127\.0\.0\.1:\d+\//);
    assert.match(r.stdout, /\d\d:\d\d:\d\d WARN  DEVELOPMENT MODE/);
    assert.equal(r.stdout.includes('{"level"'), false);
  });

  test('herald token mints a token the server accepts with the same secret, with the channels claim', async () => {
    const secret = 'cli-token-secret-0123456789';
    const bad = run(['token', '--channels', 'a']);
    assert.equal((await bad.exited).code, 2);
    assert.match(bad.stderr, /--user: required/);
    assert.match(bad.stderr, /auth\.hmacSecret/);
    const t = run(['token', '--user', 'alice', '--channels', 'chat:*', '--ttl', '60'], { HERALD_AUTH_HMAC_SECRET: secret });
    assert.equal((await t.exited).code, 0, t.stderr);
    const token = t.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const s = run(['--port', '0', '--auth.hmac-secret', secret]);
    running.push(s);
    const port = await listening(s);
    const c = await WsClient.open(`ws://127.0.0.1:${port}/connection/websocket`);
    assert.equal((await c.ok('connect', { token })).user, 'alice');
    await c.ok('subscribe', { channel: 'chat:room' });
    const denied = await c.command('subscribe', { channel: 'news' });
    assert.ok(denied.error, 'the channels claim restricts subscriptions');
    await c.close();
  });

  test('SIGTERM tells a connected WebSocket client to reconnect (3001) and exits 0', async () => {
    const r = run(['--port', '0']);
    running.push(r);
    const port = await listening(r);
    const c = await WsClient.connected(`ws://127.0.0.1:${port}/connection/websocket`);
    await c.ok('subscribe', { channel: 'news' });
    r.child.kill('SIGTERM');
    const closed = await c.closed;
    assert.equal(closed.code, 3001);
    const { code } = await r.exited;
    assert.equal(code, 0);
  });
});
