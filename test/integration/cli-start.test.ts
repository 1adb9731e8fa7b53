/**
 * The `herald` CLI starting (or refusing to start) as a child process: exit codes for a port
 * in use and an IM store that cannot open, booleans from env, the startup summary, pretty logs
 * and `herald token`. (Split from cli.test.ts to keep each file's child processes within the
 * per-file time budget on a loaded machine.)
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { freePort, listening, run, useCliRuns } from '../helpers/cli-run.js';
import { WsClient } from '../helpers/clients.js';

describe('herald CLI start', () => {
  const cli = useCliRuns('herald-cli-start');
  const { running } = cli;

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

  test('a data directory that cannot be written fails the start with exit 2 and says which directory and why', async () => {
    const notADir = join(cli.dir, 'a-file-for-data');
    writeFileSync(notADir, 'x');
    const r = run(['--port', '0', '--data-dir', join(notADir, 'data')]);
    assert.equal((await r.exited).code, 2);
    assert.match(
      r.stderr,
      /cannot start: the data directory .*a-file-for-data\/data \(dataDir, for herald\.db and revocations\.json\) cannot be used: ENOTDIR/,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout.includes('listening'), false);
  });

  test('an IM store that cannot open fails the start with exit 2 and names the cause: unusable SQLite path, unreachable PostgreSQL', async () => {
    const notADir = join(cli.dir, 'a-file');
    writeFileSync(notADir, 'x');
    const sqlite = run(['--port', '0'], { HERALD_IM_STORE_PATH: join(notADir, 'data', 'herald.db') });
    assert.equal((await sqlite.exited).code, 2);
    assert.match(sqlite.stderr, /cannot open the IM store in SQLite/);
    const blocker = await freePort();
    const pg = run(['--port', '0', '--database', `postgres://herald@127.0.0.1:${blocker}/herald`]);
    assert.equal((await pg.exited).code, 2);
    assert.match(
      pg.stderr,
      new RegExp(`cannot open the IM store in PostgreSQL \\(database\\.url, schema herald\\): .*ECONNREFUSED 127\\.0\\.0\\.1:${blocker}`),
    );
    assert.equal(pg.stdout.includes('listening'), false);
  });

  test('web.chat is settable from env outside dev mode; the listening line carries the startup summary', async () => {
    const r = run(['--port', '0', '--no-web.admin'], { HERALD_WEB_CHAT: 'true' });
    running.push(r);
    const port = await listening(r);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
    assert.equal((await fetch(`http://127.0.0.1:${port}/admin`)).status, 404);
    const line = JSON.parse(r.stdout.split('\n').find((l) => l.includes('herald listening'))!) as Record<string, unknown>;
    assert.match(String(line.version), /^\d+\.\d+\.\d+/);
    assert.equal(line.url, `http://127.0.0.1:${port}`);
    assert.equal(line.chatUrl, `http://127.0.0.1:${port}/`);
    assert.equal(line.adminUrl, undefined);
    assert.equal(line.dev, false);
    assert.match(String((line.engines as { imStore: string }).imStore), /^sqlite .*herald\.db$/);
    assert.equal((line.engines as { broker: string }).broker, 'memory (this process)');
    assert.match(String(line.data), /herald-cli-data-\d+-\d+ \(herald\.db, revocations\.json\)$/);
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
    assert.match(r.stdout, /Data\s+\/\S+ \(herald\.db, revocations\.json\)/);
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
});
