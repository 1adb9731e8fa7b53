import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { BrokerHandler, ChannelEvent } from '../../src/core/broker.js';
import type { Publication } from '../../src/core/publication.js';
import { MemoryBroker } from '../../src/engines/broker-memory.js';

const input = (n: number) => ({ payload: Buffer.from(String(n)), contentType: 'application/json' });
const KEEP = { historySize: 100, historyTtlMs: 0 };

describe('MemoryBroker', () => {
  let broker: MemoryBroker;
  const got = { pubs: [] as Publication[], deleted: [] as string[], events: [] as ChannelEvent[] };
  const handler: BrokerHandler = {
    onPublication: (p) => got.pubs.push(p),
    onChannelDeleted: (c) => got.deleted.push(c),
    onEvent: (e) => got.events.push(e),
  };
  beforeEach(async () => {
    got.pubs = [];
    got.deleted = [];
    got.events = [];
    broker = new MemoryBroker();
    await broker.start(handler);
  });
  afterEach(async () => {
    await broker.close();
  });

  const offsets = (pubs: Publication[]): number[] => pubs.map((p) => p.offset);

  test('offsets count from 1 per channel within one epoch', async () => {
    const a1 = await broker.publish('a', input(1), KEEP);
    const a2 = await broker.publish('a', input(2), KEEP);
    const b1 = await broker.publish('b', input(1), KEEP);
    assert.deepEqual([a1.offset, a2.offset, b1.offset], [1, 2, 1]);
    assert.equal(a1.epoch, a2.epoch);
    assert.match(a1.epoch, /^[\w-]{1,32}$/);
  });

  test('history keeps at most historySize publications, oldest dropped first', async () => {
    for (let i = 1; i <= 10; i++) await broker.publish('c', input(i), { historySize: 3, historyTtlMs: 0 });
    const h = await broker.history('c', { limit: 100 });
    assert.deepEqual(offsets(h.publications), [8, 9, 10]);
    assert.equal(h.oldest, 8);
    assert.equal(h.position.offset, 10);
  });

  test('many publications past the size limit keep the newest (after buffer compaction)', async () => {
    for (let i = 1; i <= 500; i++) await broker.publish('c', input(i), { historySize: 10, historyTtlMs: 0 });
    const h = await broker.history('c', { limit: 100 });
    assert.deepEqual(offsets(h.publications), Array.from({ length: 10 }, (_, i) => 491 + i));
  });

  test('historySize 0 keeps nothing but still numbers publications', async () => {
    await broker.publish('c', input(1), { historySize: 0, historyTtlMs: 0 });
    await broker.publish('c', input(2), { historySize: 0, historyTtlMs: 0 });
    const h = await broker.history('c', { limit: 10 });
    assert.deepEqual(h.publications, []);
    assert.equal(h.position.offset, 2);
    assert.equal(h.oldest, 3);
  });

  test('publications expire after historyTtlMs', async () => {
    await broker.publish('c', input(1), { historySize: 10, historyTtlMs: 40 });
    await new Promise((r) => setTimeout(r, 60));
    await broker.publish('c', input(2), { historySize: 10, historyTtlMs: 40 });
    const h = await broker.history('c', { limit: 10 });
    assert.deepEqual(offsets(h.publications), [2]);
    assert.equal(h.oldest, 2);
  });

  test('since reads return what follows the position; reverse reads return the newest first', async () => {
    for (let i = 1; i <= 5; i++) await broker.publish('c', input(i), KEEP);
    const { position } = await broker.history('c', { limit: 0 });
    assert.deepEqual(offsets((await broker.history('c', { since: { epoch: position.epoch, offset: 2 }, limit: 100 })).publications), [3, 4, 5]);
    assert.deepEqual(offsets((await broker.history('c', { since: { epoch: position.epoch, offset: 2 }, limit: 2 })).publications), [3, 4]);
    assert.deepEqual(offsets((await broker.history('c', { since: { epoch: position.epoch, offset: 5 }, limit: 100 })).publications), []);
    assert.deepEqual(offsets((await broker.history('c', { limit: 2, reverse: true })).publications), [5, 4]);
    assert.deepEqual(offsets((await broker.history('c', { limit: 100 })).publications), [1, 2, 3, 4, 5]);
    assert.deepEqual((await broker.history('c', { limit: 0 })).publications, []);
  });

  test('a since position from another epoch reads everything kept', async () => {
    for (let i = 1; i <= 3; i++) await broker.publish('c', input(i), KEEP);
    const h = await broker.history('c', { since: { epoch: 'other', offset: 2 }, limit: 100 });
    assert.deepEqual(offsets(h.publications), [1, 2, 3]);
  });

  test('a since position older than history reads from the oldest kept', async () => {
    for (let i = 1; i <= 6; i++) await broker.publish('c', input(i), { historySize: 3, historyTtlMs: 0 });
    const { position } = await broker.history('c', { limit: 0 });
    const h = await broker.history('c', { since: { epoch: position.epoch, offset: 1 }, limit: 100 });
    assert.deepEqual(offsets(h.publications), [4, 5, 6]);
    assert.equal(h.oldest, 4);
  });

  test('deleting a channel drops history, tells the node and starts a new epoch', async () => {
    const p = await broker.publish('c', input(1), KEEP);
    assert.equal(await broker.deleteChannel('c'), true);
    assert.deepEqual(got.deleted, ['c']);
    const q = await broker.publish('c', input(2), KEEP);
    assert.notEqual(q.epoch, p.epoch);
    assert.equal(q.offset, 1);
    assert.equal(await broker.deleteChannel('never'), false);
  });

  test('two brokers (a restart) give the same channel different epochs', async () => {
    const other = new MemoryBroker();
    await other.start(handler);
    try {
      const a = await broker.publish('c', input(1), KEEP);
      const b = await other.publish('c', input(1), KEEP);
      assert.notEqual(a.epoch, b.epoch);
    } finally {
      await other.close();
    }
  });

  test('publications and events reach the node only for subscribed channels', async () => {
    await broker.publish('c', input(1), KEEP);
    await broker.broadcastEvent({ type: 'join', channel: 'c', client: 'x' });
    assert.equal(got.pubs.length + got.events.length, 0);
    await broker.subscribe('c');
    await broker.publish('c', input(2), KEEP);
    await broker.broadcastEvent({ type: 'join', channel: 'c', client: 'x' });
    assert.deepEqual(offsets(got.pubs), [2]);
    assert.equal(got.events.length, 1);
    await broker.unsubscribe('c');
    await broker.publish('c', input(3), KEEP);
    assert.deepEqual(offsets(got.pubs), [2]);
  });

  test('channels are listed by prefix, sorted, limited, with buffered counts', async () => {
    for (const c of ['n:b', 'n:a', 'm:a', 'n:c']) await broker.publish(c, input(1), KEEP);
    await broker.publish('n:a', input(2), KEEP);
    const list = await broker.channels('n:', 2);
    assert.deepEqual(list.map((c) => [c.channel, c.buffered, c.position.offset]), [['n:a', 2, 2], ['n:b', 1, 1]]);
  });
});
