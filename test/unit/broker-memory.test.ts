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
