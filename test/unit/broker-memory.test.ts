import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryBroker } from '../../src/engines/broker-memory.js';
import { brokerSuite, Received } from './broker.suite.js';

brokerSuite('memory', { create: () => new MemoryBroker(), distributed: false });

void test('memory broker: two brokers (a restart) give the same channel different epochs', async () => {
  const a = new MemoryBroker();
  const b = new MemoryBroker();
  await a.start(new Received());
  await b.start(new Received());
  try {
    const pa = await a.publish('c', { payload: Buffer.from('1') }, { historySize: 10, historyTtlMs: 0 });
    const pb = await b.publish('c', { payload: Buffer.from('1') }, { historySize: 10, historyTtlMs: 0 });
    assert.notEqual(pa.epoch, pb.epoch);
  } finally {
    await a.close();
    await b.close();
  }
});

void test('memory broker: the sweep forgets idle unsubscribed channels once what they keep has expired, and nothing else', async () => {
  const broker = new MemoryBroker({ channelIdleMs: 100 });
  await broker.start(new Received());
  const names = async (): Promise<string[]> => (await broker.channels('', 100)).map((c) => c.channel);
  const until = async (want: string[]): Promise<void> => {
    const deadline = Date.now() + 5_000;
    while (JSON.stringify(await names()) !== JSON.stringify(want)) {
      if (Date.now() > deadline) assert.deepEqual(await names(), want);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await broker.subscribe('live');
    await broker.publish('live', { payload: Buffer.from('1') }, { historySize: 0, historyTtlMs: 0 });
    await broker.publish('once', { payload: Buffer.from('1') }, { historySize: 0, historyTtlMs: 0 });
    await broker.publish('kept', { payload: Buffer.from('1') }, { historySize: 10, historyTtlMs: 0 });
    await broker.publish('brief', { payload: Buffer.from('1') }, { historySize: 10, historyTtlMs: 1_500 });
    assert.deepEqual(await names(), ['brief', 'kept', 'live', 'once']);
    // 'once' kept nothing and nobody listens: forgotten after the idle time.
    await until(['brief', 'kept', 'live']);
    // 'brief' goes once its publication expired and it idled; 'kept' keeps history forever.
    await until(['kept', 'live']);
    await broker.unsubscribe('live');
    await until(['kept']);
    // Nothing is due any more ('kept' keeps its history forever): the sweep stops.
    const deadline = Date.now() + 3_000;
    while (broker.sweeping && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(broker.sweeping, false, 'a broker with nothing due still sweeps');
    // A forgotten channel starts over with a new epoch, and its idle check wakes the sweep again.
    const again = await broker.publish('once', { payload: Buffer.from('2') }, { historySize: 0, historyTtlMs: 0 });
    assert.equal(again.offset, 1);
    assert.equal(broker.sweeping, true);
    await until(['kept']);
  } finally {
    await broker.close();
  }
});
