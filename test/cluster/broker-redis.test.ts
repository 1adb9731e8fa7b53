import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { RedisBroker } from '../../src/engines/broker-redis.js';
import { HeraldError } from '../../src/core/errors.js';
import { brokerSuite, Received, until } from '../unit/broker.suite.js';
import { deleteKeys, PrivateRedis, SHARED_REDIS_URL, testPrefix } from './redis.js';

const runPrefix = testPrefix('broker');
after(async () => {
  await deleteKeys(SHARED_REDIS_URL, runPrefix);
});

brokerSuite('redis', {
  distributed: true,
  create: (space) => new RedisBroker({ url: SHARED_REDIS_URL, prefix: `${runPrefix}${space}:` }),
  cleanup: async (space) => {
    await deleteKeys(SHARED_REDIS_URL, `${runPrefix}${space}:`);
  },
});

const KEEP = { historySize: 100, historyTtlMs: 0 };
const input = (n: number) => ({ payload: Buffer.from(String(n)) });

void test('redis broker: malformed messages on the control channel are dropped; the channel keeps working', async () => {
  const prefix = `${runPrefix}malformed:`;
  const got = new Received();
  const b = new RedisBroker({ url: SHARED_REDIS_URL, prefix });
  const raw = new Redis(SHARED_REDIS_URL);
  try {
    await b.start(got);
    for (const junk of ['{', '"x"', '{"type":"control"}', '{"type":"control","msg":{"type":"reboot","from":"n"}}', '{"type":"deleted","channel":5}']) {
      assert.equal(await raw.publish(`${prefix}control`, junk), 1);
    }
    const msg = { type: 'disconnect' as const, user: 'u', code: 3503, reason: 'r', from: 'n' };
    assert.equal(await b.control(msg), 1);
    await until(() => got.control.length === 1, 'the well-formed control message');
    assert.deepEqual(got.control, [msg]);
    assert.deepEqual(got.deleted, []);
  } finally {
    raw.disconnect();
    await b.close();
  }
});

void describe('redis broker: outages (private redis-server)', () => {
  void test('refuses to start when Redis is unreachable, with a clear error', async () => {
    const b = new RedisBroker({ url: 'redis://127.0.0.1:1' });
    await assert.rejects(
      b.start(new Received()),
      (err: unknown) => err instanceof HeraldError && err.code === 'HERALD_ERR_UNAVAILABLE' && /Cannot connect to Redis/.test(err.message),
    );
    await b.close();
  });

  void test('while Redis is down operations fail with HERALD_ERR_UNAVAILABLE; afterwards subscriptions come back with no gap', async () => {
    const redis = await PrivateRedis.start();
    const gotA = new Received();
    const a = new RedisBroker({ url: redis.url, prefix: 'p:' });
    const b = new RedisBroker({ url: redis.url, prefix: 'p:' });
    try {
      await a.start(gotA);
      await b.start(new Received());
      await a.subscribe('live');
      await a.subscribe('quiet'); // subscribed, nothing delivered before the outage
      await b.publish('live', input(1), KEEP);
      await until(() => gotA.offsets('live').length === 1, 'the first publication');
      const epoch = gotA.pubs[0]!.epoch;

      await redis.stop();
      const unavailable = (err: unknown) => err instanceof HeraldError && err.code === 'HERALD_ERR_UNAVAILABLE' && err.status === 503;
      await assert.rejects(b.publish('live', input(2), KEEP), unavailable);
      await assert.rejects(a.subscribe('other'), unavailable);
      await assert.rejects(a.history('live', { limit: 1 }), unavailable);
      await assert.rejects(a.broadcastEvent({ type: 'join', channel: 'live', client: 'c' }), unavailable);
      await assert.rejects(a.deleteChannel('live'), unavailable);
      await assert.rejects(a.channels('', 10), unavailable);

      await redis.start();
      // Node B publishes as soon as it can; node A may not have resubscribed yet: catch-up covers it.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const ok = await b.publish('live', input(2), KEEP).then(
          () => true,
          () => false,
        );
        if (ok) break;
        assert.ok(Date.now() < deadline, 'node B could not publish again within 10 s');
        await new Promise((r) => setTimeout(r, 20));
      }
      await b.publish('quiet', input(1), KEEP);
      await b.publish('live', input(3), KEEP);
      await until(() => gotA.offsets('live').length === 3 && gotA.offsets('quiet').length === 1, 'publications after the restart on node A', 10_000);
      const after = gotA.pubs.filter((p) => p.channel === 'live').slice(1);
      // The private Redis kept nothing: history was lost, so the channel has a new epoch.
      assert.notEqual(after[0]!.epoch, epoch);
      assert.deepEqual(
        after.map((p) => p.offset),
        [1, 2],
      );
      await a.subscribe('other');
    } finally {
      await a.close();
      await b.close();
      await redis.destroy();
    }
  });
});
