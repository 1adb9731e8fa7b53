/**
 * The `herald` CLI as a child process: help, config validation, layering of file, env and
 * flags, the loopback/API-key rule and graceful shutdown on SIGTERM.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { envName, flagName, OPTIONS } from '../../src/index.js';
import { freePort, listening, run, useCliRuns } from '../helpers/cli-run.js';
import { WsClient } from '../helpers/clients.js';

describe('herald CLI', () => {
  const cli = useCliRuns('herald-cli');
  const { running } = cli;

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
    const file = join(cli.dir, 'bad.json');
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
    const file = join(cli.dir, 'herald.config.json');
    writeFileSync(file, JSON.stringify({ port: filePort, dev: true, timing: { pingIntervalMs: 1_000 } }));

    const envWins = run(['--config', file], { HERALD_PORT: String(envPort) });
    running.push(envWins);
    assert.equal(await listening(envWins), envPort, 'env beats the file');
    const c1 = await WsClient.open(`ws://127.0.0.1:${envPort}/connection/websocket`);
    assert.equal((await c1.ok('connect')).ping, 1_000, 'the file beats the defaults');
    await c1.close();
    envWins.child.kill('SIGTERM');
    await envWins.exited;

    const flagWins = run(['serve', '--config', file, '--port', String(flagPort), '--timing.ping-interval-ms', '2000'], {
      HERALD_PORT: String(envPort),
      HERALD_TIMING_PING_INTERVAL_MS: '1500',
    });
    running.push(flagWins);
    assert.equal(await listening(flagWins), flagPort, 'flags beat env');
    const c2 = await WsClient.open(`ws://127.0.0.1:${flagPort}/connection/websocket`);
    const r2 = await c2.ok('connect', { user: 'u' });
    assert.equal(r2.ping, 2_000, 'flag beats env for ping interval');
    assert.equal(r2.user, 'u', 'dev mode from the file');
    await c2.close();
  });

  test('an environment variable overrides the file default for a nested option', async () => {
    const file = join(cli.dir, 'nested.json');
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
