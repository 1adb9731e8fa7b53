/**
 * `/metrics` content: stock Node.js process metric names (no Herald prefix on them), no Herald
 * gauge named like a counter, and the IM store, engine and per-command error series fed by
 * real traffic over WebSocket, HTTP and the server API.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer, type HeraldServer } from '../../src/index.js';
import { WsClient } from '../helpers/clients.js';
import { wsUrl } from '../helpers/server.js';

describe('/metrics', () => {
  let server: HeraldServer;
  const dir = mkdtempSync(join(tmpdir(), 'herald-metrics-'));
  before(async () => {
    server = createServer({ config: { port: 0, logLevel: 'silent', dev: true, dataDir: dir } });
    await server.listen();
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const scrape = async (): Promise<string> => {
    const res = await fetch(`${server.url()}/metrics`);
    assert.equal(res.status, 200);
    return res.text();
  };
  const post = (path: string, body: unknown): Promise<Response> =>
    fetch(`${server.url()}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  test('process metrics keep their stock names and no Herald gauge ends in _total', async () => {
    const text = await scrape();
    assert.match(text, /^process_cpu_user_seconds_total \d/m);
    assert.match(text, /^process_resident_memory_bytes \d/m);
    assert.match(text, /^nodejs_eventloop_lag_seconds \d/m);
    assert.match(text, /^nodejs_heap_size_used_bytes \d/m);
    assert.equal(/^herald_process_/m.test(text), false, 'no double prefix');
    // The loop delay series come from Herald's sampler, once each, as plain seconds.
    for (const s of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
      const lines = text.split('\n').filter((l) => l.startsWith(`nodejs_eventloop_lag_${s}_seconds `));
      assert.equal(lines.length, 1, `one nodejs_eventloop_lag_${s}_seconds sample`);
      const v = Number(lines[0]!.split(' ')[1]);
      assert.ok(v >= 0 && v < 60, `nodejs_eventloop_lag_${s}_seconds is a delay in seconds: ${v}`);
    }
    const gauges = [...text.matchAll(/^# TYPE (herald_\S+) gauge$/gm)].map((m) => m[1]!);
    assert.ok(gauges.includes('herald_connections'));
    assert.deepEqual(
      gauges.filter((g) => g.endsWith('_total')),
      [],
    );
  });

  test('command errors are counted per command, code and transport, over WebSocket and HTTP', async () => {
    const c = await WsClient.connected(wsUrl(server), { user: 'metric-user' });
    assert.ok((await c.command('bogus.command')).error);
    assert.ok((await c.command('unsubscribe', { channel: 'never-subscribed' })).error);
    await c.close();
    const res = await post('/connection/command', { id: 1, cmd: 'history', channel: '' });
    assert.equal(res.status, 400);
    const text = await scrape();
    assert.match(text, /^herald_command_errors_total\{command="other",code="HERALD_ERR_UNKNOWN_COMMAND",transport="websocket"\} 1$/m);
    assert.match(text, /^herald_command_errors_total\{command="unsubscribe",code="HERALD_ERR_NOT_SUBSCRIBED",transport="websocket"\} 1$/m);
    assert.match(text, /^herald_command_errors_total\{command="history",code="HERALD_ERR_INVALID_CHANNEL",transport="http"\} 1$/m);
  });

  test('IM store operations, stored IM messages and engine readiness are exported', async () => {
    assert.equal((await post('/api/im/users', { users: [{ id: 'm-alice' }, { id: 'm-bob' }] })).status, 200);
    const sent = await post('/api/im/send', { from: 'm-alice', to: 'm-bob', clientId: 'metrics-1', data: { text: 'hi' } });
    assert.equal(sent.status, 200, await sent.clone().text());
    const text = await scrape();
    assert.match(text, /^herald_im_messages_stored_total [1-9]/m);
    assert.match(text, /^herald_im_store_operations_total\{op="append",outcome="ok"\} [1-9]/m);
    assert.match(text, /^herald_im_store_operation_duration_seconds_count\{op="append"\} [1-9]/m);
    assert.match(text, /^herald_engine_up\{check="imStore",engine="sqlite"\} 1$/m);
    assert.match(text, /^herald_engine_up\{check="broker",engine="memory"\} 1$/m);
  });
});
