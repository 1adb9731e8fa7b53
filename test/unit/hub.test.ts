import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChannelEvent } from '../../src/core/broker.js';
import { Hub, type Subscriber } from '../../src/core/hub.js';
import { Outgoing, type Publication } from '../../src/core/publication.js';
import { MemoryBroker } from '../../src/engines/broker-memory.js';
import { Received } from './broker.suite.js';

/** A subscriber that records what reaches it. */
class Recorder implements Subscriber {
  readonly got: string[] = [];
  deliver(out: Outgoing): void {
    this.got.push(`pub ${out.pub.channel} ${out.pub.offset}`);
  }
  channelDeleted(channel: string): void {
    this.got.push(`deleted ${channel}`);
  }
  event(event: ChannelEvent): void {
    this.got.push(`${event.type} ${event.channel}`);
  }
}

const pub = (channel: string, offset: number): Outgoing => new Outgoing({ channel, offset, epoch: 'e', time: 0, payload: Buffer.from('x') } as Publication);

void test('hub: a channel goes from one subscriber to several and back to none, delivering to each exactly once', async () => {
  const broker = new MemoryBroker();
  await broker.start(new Received());
  const hub = new Hub(broker);
  const [a, b, c] = [new Recorder(), new Recorder(), new Recorder()];
  try {
    assert.equal(await hub.add('ch', a), true);
    assert.equal(await hub.add('ch', a), false, 'the lone subscriber again');
    assert.equal(hub.subscriberCount('ch'), 1);
    assert.equal(hub.broadcast(pub('ch', 1)), 1);
    assert.equal(await hub.add('ch', b), true);
    assert.equal(await hub.add('ch', b), false, 'a member of the set again');
    assert.equal(await hub.add('ch', c), true);
    assert.equal(hub.subscriberCount('ch'), 3);
    assert.equal(hub.subscriptionCount, 3);
    assert.equal(hub.broadcast(pub('ch', 2)), 3);
    hub.broadcastEvent({ type: 'join', channel: 'ch', client: 'x' });
    assert.equal(hub.remove('ch', a), true);
    assert.equal(hub.remove('ch', a), false);
    assert.equal(hub.remove('other', b), false);
    assert.equal(hub.broadcast(pub('ch', 3)), 2);
    assert.equal(hub.remove('ch', b), true);
    assert.equal(hub.broadcast(pub('ch', 4)), 1);
    assert.equal(hub.remove('ch', c), true);
    assert.equal(hub.channelCount, 0);
    assert.equal(hub.subscriptionCount, 0);
    assert.equal(hub.broadcast(pub('ch', 5)), 0);
    assert.deepEqual(a.got, ['pub ch 1', 'pub ch 2', 'join ch']);
    assert.deepEqual(b.got, ['pub ch 2', 'join ch', 'pub ch 3']);
    assert.deepEqual(c.got, ['pub ch 2', 'join ch', 'pub ch 3', 'pub ch 4']);
  } finally {
    await broker.close();
  }
});

void test('hub: deleting a channel tells its lone subscriber, or every one of several, once', async () => {
  const broker = new MemoryBroker();
  await broker.start(new Received());
  const hub = new Hub(broker);
  const [a, b, c] = [new Recorder(), new Recorder(), new Recorder()];
  try {
    await hub.add('one', a);
    await hub.add('many', b);
    await hub.add('many', c);
    hub.broadcastEvent({ type: 'leave', channel: 'one', client: 'x' });
    assert.equal(hub.channelDeleted('one'), 1);
    assert.equal(hub.channelDeleted('many'), 2);
    assert.equal(hub.channelDeleted('many'), 0);
    assert.equal(hub.subscriptionCount, 0);
    assert.deepEqual(a.got, ['leave one', 'deleted one']);
    assert.deepEqual(b.got, ['deleted many']);
    assert.deepEqual(c.got, ['deleted many']);
  } finally {
    await broker.close();
  }
});
