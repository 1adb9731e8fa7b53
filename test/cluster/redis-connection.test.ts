/**
 * The Redis connection module every Redis engine uses (src/engines/redis-connection.ts): lazy
 * connect, fail-fast error mapping, retry after a failed connect, key prefix and URL redaction,
 * against the shared Redis and a private redis-server that a test stops and starts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { HeraldError } from '../../src/core/errors.js';
import { isTransient, keyPrefix, LazyRedis, redactUrl, redisUnavailable } from '../../src/engines/redis-connection.js';
import { freePort, PrivateRedis, SHARED_REDIS_URL } from './redis.js';

/** Names of the clients connected to the shared Redis now (CLIENT LIST). */
async function clientNames(): Promise<string[]> {
  const r = new Redis(SHARED_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await r.connect();
  try {
    const list = (await r.client('LIST')) as string;
    return [...list.matchAll(/ name=(\S*)/g)].map((m) => m[1]!);
  } finally {
    r.disconnect();
  }
}

const unavailable = (message?: RegExp) => (err: unknown) =>
  err instanceof HeraldError && err.code === 'HERALD_ERR_UNAVAILABLE' && (message === undefined || message.test(err.message));

void describe('redis connection module', { timeout: 120_000 }, () => {
  const opened: LazyRedis[] = [];
  after(async () => {
    for (const r of opened) await r.close();
  });

  void test('redactUrl hides the password and keeps the rest; an invalid URL is not echoed', () => {
    assert.equal(redactUrl('redis://user:s3cret@10.0.0.5:6380/2'), 'redis://user:***@10.0.0.5:6380/2');
    assert.equal(redactUrl('redis://127.0.0.1:6379'), 'redis://127.0.0.1:6379');
    assert.equal(redactUrl('not a url :s3cret@'), '(invalid URL)');
  });

  void test('keyPrefix is the engine option, else herald:', () => {
    assert.equal(keyPrefix({}), 'herald:');
    assert.equal(keyPrefix({ prefix: 'tenant-a:' }), 'tenant-a:');
  });

  void test('isTransient tells an unreachable Redis from a command error', () => {
    const reply = (message: string): Error => Object.assign(new Error(message), { name: 'ReplyError' });
    assert.equal(isTransient(new Error('Connection is closed.')), true);
    assert.equal(isTransient(reply('LOADING Redis is loading the dataset in memory')), true);
    assert.equal(isTransient(reply('READONLY You can’t write against a read only replica.')), true);
    assert.equal(isTransient(reply("ERR unknown command 'NOPE'")), false);
    assert.equal(isTransient('a string'), false);
    const e = redisUnavailable(new Error('x'));
    assert.equal(e.code, 'HERALD_ERR_UNAVAILABLE');
    assert.equal((e.cause as Error).message, 'x');
  });

  void test('LazyRedis opens no connection until first used, then one named connection; close drops it and later runs fail', async () => {
    const name = `herald-conn-test-${randomBytes(4).toString('hex')}`;
    const lazy = new LazyRedis(SHARED_REDIS_URL, { connectionName: name, label: 'Test engine' });
    opened.push(lazy);
    assert.ok(!(await clientNames()).includes(name), 'no connection before the first use');
    assert.equal(await lazy.run((r) => r.ping()), 'PONG');
    assert.equal((await clientNames()).filter((n) => n === name).length, 1);
    // A command error is reported as unavailable, with Redis's own error as the cause.
    await assert.rejects(
      lazy.run((r) => r.call('NO-SUCH-COMMAND')),
      (err: unknown) => unavailable(/^Redis is unavailable$/)(err) && (err as HeraldError).cause instanceof Error,
    );
    await lazy.close();
    assert.ok(!(await clientNames()).includes(name), 'closed');
    await assert.rejects(
      lazy.run((r) => r.ping()),
      unavailable(/^Test engine closed$/),
    );
    await assert.rejects(lazy.connect(), unavailable(/^Test engine closed$/));
  });

  void test('connecting to an unreachable Redis fails fast with the URL, password hidden', async () => {
    const port = await freePort();
    const lazy = new LazyRedis(`redis://:hunter22@127.0.0.1:${port}`, { connectionName: 'herald-conn-test-down', label: 'Test engine' });
    opened.push(lazy);
    const started = Date.now();
    await assert.rejects(lazy.connect(), (err: unknown) => {
      assert.ok(unavailable(/^Cannot connect to Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: /)(err), String(err));
      assert.doesNotMatch((err as Error).message, /hunter22/);
      return true;
    });
    await assert.rejects(
      lazy.run((r) => r.ping()),
      unavailable(/^Redis is unavailable$/),
    );
    assert.ok(Date.now() - started < 5_000, 'no waiting for a Redis that is not there');
  });

  void test('a failed connect is tried again on the next use, and the engine works once Redis is up', async () => {
    const redis = await PrivateRedis.start();
    try {
      await redis.stop();
      let connects = 0;
      const lazy = new LazyRedis(redis.url, { connectionName: 'herald-conn-test-retry', label: 'Test engine', onConnect: () => connects++ });
      opened.push(lazy);
      await assert.rejects(
        lazy.run((r) => r.ping()),
        unavailable(),
      );
      await redis.start();
      assert.equal(await lazy.run((r) => r.ping()), 'PONG');
      assert.equal(await lazy.run((r) => r.set('k', 'v')), 'OK');
      assert.equal(connects, 1, 'onConnect runs once, when the connection first opens');
      await lazy.close();
    } finally {
      await redis.destroy();
    }
  });
});
