/**
 * The composition root: `selectEngines` chooses every engine from the config (or takes the ones
 * given), and a HeraldServer cannot be built without them, so `redis.url` is never ignored.
 * Constructing engines opens no connection, so no Redis or PostgreSQL is needed here.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  createServer,
  HeraldServer,
  isResolvedConfig,
  MemoryBroker,
  MemoryPresence,
  MemorySessions,
  PostgresImStore,
  RedisBroker,
  RedisNodeRegistry,
  RedisPresence,
  RedisSessions,
  resolveConfig,
  selectEngines,
  SqliteImStore,
} from '../../src/index.js';

describe('selectEngines', () => {
  test('without redis.url or database.url: memory engines, the SQLite store, no registry, no backend client', () => {
    const e = selectEngines(resolveConfig({}));
    assert.ok(e.broker instanceof MemoryBroker);
    assert.ok(e.sessions instanceof MemorySessions);
    assert.ok(e.presence instanceof MemoryPresence);
    assert.ok(e.imStore instanceof SqliteImStore);
    assert.equal(e.registry, undefined);
    assert.equal(e.backendTransport, undefined);
  });

  test('redis.url selects Redis for broker, sessions, presence and the node registry; database.url PostgreSQL', () => {
    const e = selectEngines(
      resolveConfig({
        redis: { url: 'redis://127.0.0.1:6379' },
        database: { url: 'postgres://herald@127.0.0.1:5432/test' },
        backend: { webhookUrl: 'http://127.0.0.1:9/hook' },
      }),
    );
    assert.ok(e.broker instanceof RedisBroker);
    assert.ok(e.sessions instanceof RedisSessions);
    assert.ok(e.presence instanceof RedisPresence);
    assert.ok(e.registry instanceof RedisNodeRegistry);
    assert.ok(e.imStore instanceof PostgresImStore);
    assert.notEqual(e.backendTransport, undefined);
  });

  test('engines given as overrides win over the config', () => {
    const broker = new MemoryBroker();
    const e = selectEngines(resolveConfig({ redis: { url: 'redis://127.0.0.1:6379' } }), { broker });
    assert.equal(e.broker, broker);
    assert.ok(e.sessions instanceof RedisSessions);
  });
});

describe('HeraldServer construction', () => {
  test('a server cannot be built from a config alone (it would ignore redis.url): TypeError', () => {
    const config = resolveConfig({ redis: { url: 'redis://127.0.0.1:6379' } });
    assert.throws(() => new HeraldServer({ config } as never), TypeError);
  });

  test('a frozen object shaped like a config is not taken as resolved: createServer validates it', () => {
    const lookalike = Object.freeze({ limits: {}, timing: {}, port: -1 });
    assert.equal(isResolvedConfig(lookalike), false);
    assert.equal(isResolvedConfig(resolveConfig({})), true);
    assert.throws(() => createServer({ config: lookalike }), /port/);
  });

  test('createServer honours redis.url', async () => {
    const server = createServer({ config: { redis: { url: 'redis://127.0.0.1:6379' }, logLevel: 'silent' }, processMetrics: false });
    assert.ok(server.core.broker instanceof RedisBroker);
    assert.ok(server.core.sessions instanceof RedisSessions);
    await server.close();
  });
});
