import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HistoryQuery, HistoryResult } from '../../src/core/broker.js';
import { SharedHistoryReads } from '../../src/core/history-reads.js';
import { MemoryBroker } from '../../src/engines/broker-memory.js';
import { Received } from './broker.suite.js';

/** A memory broker that counts its history reads. */
class CountingBroker extends MemoryBroker {
  reads: HistoryQuery[] = [];
  override history(channel: string, query: HistoryQuery): Promise<HistoryResult> {
    this.reads.push(query);
    return super.history(channel, query);
  }
}

async function withChannel(count: number, historySize: number, fn: (broker: CountingBroker, epoch: string) => Promise<void>): Promise<void> {
  const broker = new CountingBroker();
  await broker.start(new Received());
  try {
    let epoch = '';
    for (let i = 1; i <= count; i++) epoch = (await broker.publish('c', { payload: Buffer.from(String(i)) }, { historySize, historyTtlMs: 0 })).epoch;
    broker.reads = [];
    await fn(broker, epoch);
  } finally {
    await broker.close();
  }
}

const offsets = (res: HistoryResult): number[] => res.publications.map((p) => p.offset);

void test('history reads of one channel asked for in one turn are one broker read; each caller gets what its own read would', async () => {
  await withChannel(10, 100, async (broker, epoch) => {
    const sinces = [7, 3, 3, 9, 10, 0];
    const shared = new SharedHistoryReads(broker);
    const got = await Promise.all(sinces.map((offset) => shared.since('c', { epoch, offset }, 100)));
    assert.equal(broker.reads.length, 1);
    assert.equal(broker.reads[0]!.since?.offset, 0);
    for (const [i, offset] of sinces.entries()) {
      const own = await broker.history('c', { since: { epoch, offset }, limit: 100 });
      assert.deepEqual(offsets(got[i]!), offsets(own), `since ${offset}`);
      assert.deepEqual(got[i]!.position, own.position);
      assert.equal(got[i]!.oldest, own.oldest);
    }
  });
});

void test('a merged read cut by the limit, or of another epoch, leaves the later callers to read on their own', async () => {
  await withChannel(10, 100, async (broker, epoch) => {
    const shared = new SharedHistoryReads(broker);
    const [early, late] = await Promise.all([shared.since('c', { epoch, offset: 1 }, 4), shared.since('c', { epoch, offset: 6 }, 4)]);
    assert.deepEqual(offsets(early), [2, 3, 4, 5]);
    assert.deepEqual(offsets(late), [7, 8, 9, 10]);
    assert.equal(broker.reads.length, 2);
    broker.reads = [];
    const [a, b] = await Promise.all([shared.since('c', { epoch: 'gone', offset: 1 }, 100), shared.since('c', { epoch: 'gone', offset: 5 }, 100)]);
    const own = await broker.history('c', { since: { epoch: 'gone', offset: 5 }, limit: 100 });
    assert.deepEqual(offsets(b), offsets(own));
    assert.equal(a.position.epoch, epoch);
    assert.equal(broker.reads.length, 3);
  });
});

void test('evicted history: every caller sees the same oldest offset, and a read started later is a new read', async () => {
  await withChannel(10, 5, async (broker, epoch) => {
    const shared = new SharedHistoryReads(broker);
    const [a, b] = await Promise.all([shared.since('c', { epoch, offset: 2 }, 100), shared.since('c', { epoch, offset: 8 }, 100)]);
    assert.deepEqual(offsets(a), [6, 7, 8, 9, 10]);
    assert.equal(a.oldest, 6);
    assert.deepEqual(offsets(b), [9, 10]);
    assert.equal(b.oldest, 6);
    assert.equal(broker.reads.length, 1);
    await broker.publish('c', { payload: Buffer.from('11') }, { historySize: 5, historyTtlMs: 0 });
    const [pos, after] = await Promise.all([shared.position('c'), shared.since('c', { epoch, offset: 10 }, 100)]);
    assert.equal(pos.position.offset, 11);
    assert.deepEqual(offsets(after), [11]);
    assert.equal(broker.reads.length, 3);
  });
});
