/**
 * `GET /ready` with the Redis broker and the PostgreSQL IM store: ready while both answer;
 * 503 naming the broker and Redis while a private Redis is stopped, ready again once it is back.
 * Meanwhile a client publication over `POST /connection/command` is answered 503, the outage
 * is logged with the command and transport, and the broker's Redis operations are counted in
 * /metrics by outcome.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { captureLogger } from '../helpers/log-capture.js';
import { startServer } from '../helpers/server.js';
import { dropSchema, SHARED_PG_URL, testSchema } from './postgres.js';
import { PrivateRedis, testPrefix } from './redis.js';

async function ready(server: HeraldServer): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url()}/ready`);
  return { status: res.status, body: await res.json() };
}

async function metrics(server: HeraldServer): Promise<string> {
  const res = await fetch(`${server.url()}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

describe('readiness with Redis and PostgreSQL', () => {
  let redis: PrivateRedis;
  let server: HeraldServer;
  const logger = captureLogger();
  const schema = testSchema('ready');
  before(async () => {
    redis = await PrivateRedis.start();
    server = await startServer(
      {
        dev: true,
        namespaces: [{ name: 'pub', allowPublish: true }],
        redis: { url: redis.url, prefix: testPrefix('ready') },
        database: { url: SHARED_PG_URL, schema },
      },
      { logger },
    );
  });
  after(async () => {
    await server.close();
    await redis.destroy();
    await dropSchema(schema);
  });

  test('reports the PostgreSQL store, the Redis broker and Redis, and follows Redis going away and back', async () => {
    const up = await ready(server);
    assert.equal(up.status, 200, JSON.stringify(up.body));
    assert.deepEqual(
      Object.fromEntries(Object.entries(up.body.checks as Record<string, { engine: string; status: string }>).map(([k, c]) => [k, `${c.engine}:${c.status}`])),
      { imStore: 'postgres:ok', broker: 'redis:ok', redis: 'redis:ok' },
    );

    const publish = (n: number): Promise<Response> =>
      fetch(`${server.url()}/connection/command?user=ready-pub`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: n, cmd: 'publish', channel: 'pub:x', data: { n } }),
      });
    assert.equal((await publish(1)).status, 200);
    assert.match(await metrics(server), /^herald_broker_operations_total\{op="publish",outcome="ok"\} 1$/m);
    assert.match(await metrics(server), /^herald_broker_operation_duration_seconds_count\{op="publish"\} 1$/m);

    await redis.stop();
    let down: { status: number; body: any } | undefined;
    for (let i = 0; i < 50 && down?.status !== 503; i++) {
      down = await ready(server);
      if (down.status !== 503) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(down?.status, 503);
    assert.equal(down.body.checks.broker.status, 'error');
    assert.equal(down.body.checks.redis.status, 'error');
    assert.equal(down.body.checks.imStore.status, 'ok');
    assert.equal((await publish(2)).status, 503);
    assert.match(await metrics(server), /^herald_broker_operations_total\{op="publish",outcome="error"\} 1$/m);
    const outage = logger.entries.find((e) => e.msg === 'engine unavailable' && e.command === 'publish');
    assert.equal(outage?.level, 'warn', JSON.stringify(logger.entries.filter((e) => e.command === 'publish')));
    assert.equal(outage?.transport, 'http');
    assert.equal(typeof outage?.err, 'string');

    await redis.start();
    let back: { status: number; body: any } | undefined;
    for (let i = 0; i < 100 && back?.status !== 200; i++) {
      back = await ready(server);
      if (back.status !== 200) await new Promise((r) => setTimeout(r, 200));
    }
    assert.equal(back?.status, 200, JSON.stringify(back?.body));
  });
});
