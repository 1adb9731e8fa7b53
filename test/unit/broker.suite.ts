/**
 * The broker engine suite: the guarantees of the Broker interface (src/core/broker.ts), run over
 * every engine. A test file calls `brokerSuite` with a factory; engines that share state between
 * instances (Redis) also run the cross-node tests, where two brokers stand for two nodes.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { Broker, BrokerHandler, ChannelEvent } from '../../src/core/broker.js';
import type { ControlMessage } from '../../src/core/control-message.js';
import type { Publication } from '../../src/core/publication.js';

/** Creates brokers for the suite. */
export interface BrokerFactory {
  /**
   * A new broker (not started). Brokers created with the same `space` share channels as nodes of
   * one cluster do; each test gets a fresh space.
   */
  create(space: string): Broker | Promise<Broker>;
  /** True when brokers of one space share state (cross-node tests run). */
  readonly distributed: boolean;
  /** Remove whatever a space left behind (e.g. its Redis keys). */
  cleanup?(space: string): Promise<void>;
}

/** What one broker's handler received. */
export class Received implements BrokerHandler {
  pubs: Publication[] = [];
  deleted: string[] = [];
  events: ChannelEvent[] = [];
  control: ControlMessage[] = [];
  onPublication(p: Publication): void {
    this.pubs.push(p);
  }
  onChannelDeleted(c: string): void {
    this.deleted.push(c);
  }
  onEvent(e: ChannelEvent): void {
    this.events.push(e);
  }
  onControl(m: ControlMessage): void {
    this.control.push(m);
  }
  offsets(channel: string): number[] {
    return this.pubs.filter((p) => p.channel === channel).map((p) => p.offset);
  }
}

const input = (n: number) => ({ payload: Buffer.from(String(n)), contentType: 'application/json' });
const KEEP = { historySize: 100, historyTtlMs: 0 };
const offsets = (pubs: Publication[]): number[] => pubs.map((p) => p.offset);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Resolve once `cond()` holds (polling); rejects after `timeoutMs`. */
export async function until(cond: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

let spaces = 0;

/** Register the suite for one engine. */
export function brokerSuite(name: string, factory: BrokerFactory): void {
  void describe(`broker engine: ${name}`, () => {
    let space = '';
    let started: Broker[] = [];
    let broker: Broker;
    let got: Received;

    /** Start another broker (node) in this test's space. */
    async function node(handler: BrokerHandler = new Received()): Promise<Broker> {
      const b = await factory.create(space);
      await b.start(handler);
      started.push(b);
      return b;
    }

    /**
     * Wait until everything published before now to subscribed channels has reached `b`: publish a
     * marker on a subscribed channel and wait for it (per-node delivery is ordered).
     */
    async function drain(b: Broker, rec: Received): Promise<void> {
      const marker = `marker-${++spaces}`;
      await b.subscribe(marker);
      await b.publish(marker, input(0), KEEP);
      await until(() => rec.pubs.some((p) => p.channel === marker), 'the marker publication');
      await b.unsubscribe(marker);
    }

    beforeEach(async () => {
      space = `${process.pid}-${Date.now().toString(36)}-${++spaces}`;
      started = [];
      got = new Received();
      broker = await node(got);
    });
    afterEach(async () => {
      for (const b of started) await b.close();
      await factory.cleanup?.(space);
    });

    void test('offsets count from 1 per channel within one epoch', async () => {
      const a1 = await broker.publish('a', input(1), KEEP);
      const a2 = await broker.publish('a', input(2), KEEP);
      const b1 = await broker.publish('b', input(1), KEEP);
      assert.deepEqual([a1.offset, a2.offset, b1.offset], [1, 2, 1]);
      assert.equal(a1.epoch, a2.epoch);
      assert.match(a1.epoch, /^[\w-]{1,32}$/);
      assert.ok(Math.abs(a1.time - Date.now()) < 5_000);
    });

    void test('a channel never published to has offset 0 and keeps its epoch for the first publication', async () => {
      const h1 = await broker.history('fresh', { limit: 10 });
      const h2 = await broker.history('fresh', { limit: 10 });
      assert.deepEqual(h1.publications, []);
      assert.equal(h1.position.offset, 0);
      assert.equal(h1.oldest, 1);
      assert.equal(h2.position.epoch, h1.position.epoch);
      const p = await broker.publish('fresh', input(1), KEEP);
      assert.equal(p.epoch, h1.position.epoch);
    });

    void test('history keeps at most historySize publications, oldest dropped first', async () => {
      for (let i = 1; i <= 10; i++) await broker.publish('c', input(i), { historySize: 3, historyTtlMs: 0 });
      const h = await broker.history('c', { limit: 100 });
      assert.deepEqual(offsets(h.publications), [8, 9, 10]);
      assert.equal(h.oldest, 8);
      assert.equal(h.position.offset, 10);
    });

    void test('many publications past the size limit keep the newest', async () => {
      await Promise.all(Array.from({ length: 300 }, (_, i) => broker.publish('c', input(i + 1), { historySize: 10, historyTtlMs: 0 })));
      const h = await broker.history('c', { limit: 100 });
      assert.deepEqual(
        offsets(h.publications),
        Array.from({ length: 10 }, (_, i) => 291 + i),
      );
    });

    void test('concurrent publications get distinct consecutive offsets', async () => {
      const pubs = await Promise.all(Array.from({ length: 50 }, (_, i) => broker.publish('c', input(i), KEEP)));
      assert.deepEqual(
        pubs.map((p) => p.offset).sort((a, b) => a - b),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
    });

    void test('historySize 0 keeps nothing but still numbers publications', async () => {
      await broker.publish('c', input(1), { historySize: 0, historyTtlMs: 0 });
      await broker.publish('c', input(2), { historySize: 0, historyTtlMs: 0 });
      const h = await broker.history('c', { limit: 10 });
      assert.deepEqual(h.publications, []);
      assert.equal(h.position.offset, 2);
      assert.equal(h.oldest, 3);
    });

    void test('publications expire after historyTtlMs; the position survives', async () => {
      await broker.publish('c', input(1), { historySize: 10, historyTtlMs: 40 });
      await sleep(60);
      await broker.publish('c', input(2), { historySize: 10, historyTtlMs: 40 });
      const h = await broker.history('c', { limit: 10 });
      assert.deepEqual(offsets(h.publications), [2]);
      assert.equal(h.oldest, 2);
      await sleep(60);
      const later = await broker.history('c', { limit: 10 });
      assert.deepEqual(later.publications, []);
      assert.deepEqual(later.position, h.position);
      assert.equal(later.oldest, 3);
    });

    void test('since reads return what follows the position; reverse reads return the newest first', async () => {
      for (let i = 1; i <= 5; i++) await broker.publish('c', input(i), KEEP);
      const { position } = await broker.history('c', { limit: 0 });
      assert.deepEqual(offsets((await broker.history('c', { since: { epoch: position.epoch, offset: 2 }, limit: 100 })).publications), [3, 4, 5]);
      assert.deepEqual(offsets((await broker.history('c', { since: { epoch: position.epoch, offset: 2 }, limit: 2 })).publications), [3, 4]);
      assert.deepEqual(offsets((await broker.history('c', { since: { epoch: position.epoch, offset: 5 }, limit: 100 })).publications), []);
      assert.deepEqual(offsets((await broker.history('c', { limit: 2, reverse: true })).publications), [5, 4]);
      assert.deepEqual(offsets((await broker.history('c', { limit: 100 })).publications), [1, 2, 3, 4, 5]);
      assert.deepEqual((await broker.history('c', { limit: 0 })).publications, []);
    });

    void test('a since position from another epoch reads everything kept', async () => {
      for (let i = 1; i <= 3; i++) await broker.publish('c', input(i), KEEP);
      const h = await broker.history('c', { since: { epoch: 'other', offset: 2 }, limit: 100 });
      assert.deepEqual(offsets(h.publications), [1, 2, 3]);
    });

    void test('a since position older than history reads from the oldest kept', async () => {
      for (let i = 1; i <= 6; i++) await broker.publish('c', input(i), { historySize: 3, historyTtlMs: 0 });
      const { position } = await broker.history('c', { limit: 0 });
      const h = await broker.history('c', { since: { epoch: position.epoch, offset: 1 }, limit: 100 });
      assert.deepEqual(offsets(h.publications), [4, 5, 6]);
      assert.equal(h.oldest, 4);
    });

    void test('payload bytes and optional fields survive history and live delivery', async () => {
      const payload = Buffer.from([0, 1, 2, 255, 10, 0]);
      const full = { payload, contentType: 'application/octet-stream', event: 'tick', info: { user: 'u1', client: 'c1' } };
      await broker.subscribe('f');
      const pub = await broker.publish('f', full, KEEP);
      const bare = await broker.publish('f', { payload: Buffer.from('x') }, KEEP);
      await until(() => got.pubs.length === 2, 'two live publications');
      for (const p of [got.pubs[0]!, (await broker.history('f', { limit: 1 })).publications[0]!]) {
        assert.deepEqual(Buffer.from(p.payload), payload);
        assert.equal(p.contentType, full.contentType);
        assert.equal(p.event, 'tick');
        assert.deepEqual(p.info, full.info);
        assert.equal(p.channel, 'f');
        assert.equal(p.offset, pub.offset);
        assert.equal(p.time, pub.time);
      }
      const live = got.pubs[1]!;
      assert.equal(live.offset, bare.offset);
      assert.equal(live.contentType, undefined);
      assert.equal(live.event, undefined);
      assert.equal(live.info, undefined);
    });

    void test('deleting a channel drops history, tells the node and starts a new epoch', async () => {
      const p = await broker.publish('c', input(1), KEEP);
      assert.equal(await broker.deleteChannel('c'), true);
      await until(() => got.deleted.includes('c'), 'the deletion notice');
      const q = await broker.publish('c', input(2), KEEP);
      assert.notEqual(q.epoch, p.epoch);
      assert.equal(q.offset, 1);
      assert.equal(await broker.deleteChannel('never'), false);
    });

    void test('publications and events reach the node only for subscribed channels, in order', async () => {
      await broker.publish('c', input(1), KEEP);
      await broker.broadcastEvent({ type: 'join', channel: 'c', client: 'x' });
      await drain(broker, got);
      assert.equal(got.offsets('c').length + got.events.length, 0);
      await broker.subscribe('c');
      await broker.subscribe('c'); // idempotent
      for (let i = 2; i <= 20; i++) await broker.publish('c', input(i), KEEP);
      await broker.broadcastEvent({ type: 'join', channel: 'c', user: 'u', client: 'x' });
      await until(() => got.events.length === 1 && got.offsets('c').length === 19, 'live publications and the event');
      assert.deepEqual(
        got.offsets('c'),
        Array.from({ length: 19 }, (_, i) => i + 2),
      );
      assert.deepEqual(got.events[0], { type: 'join', channel: 'c', user: 'u', client: 'x' });
      await broker.unsubscribe('c');
      await broker.unsubscribe('c'); // idempotent
      await broker.publish('c', input(21), KEEP);
      await drain(broker, got);
      assert.equal(got.offsets('c').length, 19);
    });

    void test('channels are listed by prefix, sorted, limited, with buffered counts', async () => {
      for (const c of ['n:b', 'n:a', 'm:a', 'n:c', 'n*x']) await broker.publish(c, input(1), KEEP);
      await broker.publish('n:a', input(2), KEEP);
      const list = await broker.channels('n:', 2);
      assert.deepEqual(
        list.map((c) => [c.channel, c.buffered, c.position.offset]),
        [
          ['n:a', 2, 2],
          ['n:b', 1, 1],
        ],
      );
      assert.deepEqual(
        (await broker.channels('n*', 10)).map((c) => c.channel),
        ['n*x'],
      );
    });

    void test('control messages come back to the sending node, in send order, and count it as reached', async () => {
      const first: ControlMessage = { type: 'disconnect', user: 'u1', code: 3503, reason: 'r', from: 'n1' };
      const second: ControlMessage = { type: 'revoke-jti', jti: 'j1', expiresAt: Date.now() + 60_000, from: 'n1' };
      assert.equal(await broker.control(first), 1);
      assert.equal(await broker.control(second, second.expiresAt), 1);
      await until(() => got.control.length === 2, 'both control messages');
      assert.deepEqual(got.control, [first, second]);
    });

    if (!factory.distributed) return;

    void test('cross-node: control messages reach every node, and retained ones reach nodes that start later', async () => {
      const gotB = new Received();
      await node(gotB);
      const kick: ControlMessage = { type: 'disconnect', client: 'c1', code: 3503, reason: 'r', from: 'n1' };
      const revoke: ControlMessage = { type: 'revoke-user', user: 'u1', issuedBefore: Date.now(), from: 'n1' };
      const expired: ControlMessage = { type: 'revoke-jti', jti: 'old', expiresAt: Date.now() - 1, from: 'n1' };
      assert.equal(await broker.control(kick), 2);
      assert.equal(await broker.control(revoke, Date.now() + 60_000), 2);
      assert.equal(await broker.control(expired, expired.expiresAt), 2);
      await until(() => gotB.control.length === 3 && got.control.length === 3, 'the control messages on both nodes');
      assert.deepEqual(gotB.control, [kick, revoke, expired]);
      // A node that starts now gets only the unexpired retained message.
      const gotC = new Received();
      await node(gotC);
      assert.deepEqual(gotC.control, [revoke]);
    });

    void test('cross-node: a publication reaches exactly the nodes subscribed to its channel', async () => {
      const gotB = new Received();
      const gotC = new Received();
      const b = await node(gotB);
      const c = await node(gotC);
      await b.subscribe('x');
      await broker.subscribe('x');
      for (let i = 1; i <= 5; i++) await broker.publish('x', input(i), KEEP);
      await until(() => gotB.offsets('x').length === 5 && got.offsets('x').length === 5, 'delivery to both subscribed nodes');
      assert.deepEqual(gotB.offsets('x'), [1, 2, 3, 4, 5]);
      await drain(c, gotC);
      assert.deepEqual(gotC.offsets('x'), []);
      const h = await c.history('x', { limit: 10 });
      assert.deepEqual(offsets(h.publications), [1, 2, 3, 4, 5]);
    });

    void test('cross-node: offsets are one sequence whichever node publishes', async () => {
      const b = await node();
      const pubs = await Promise.all(Array.from({ length: 40 }, (_, i) => (i % 2 ? broker : b).publish('y', input(i), KEEP)));
      assert.deepEqual(
        pubs.map((p) => p.offset).sort((x, y) => x - y),
        Array.from({ length: 40 }, (_, i) => i + 1),
      );
      assert.equal(new Set(pubs.map((p) => p.epoch)).size, 1);
    });

    void test('cross-node: events and deletions reach the other nodes', async () => {
      const gotB = new Received();
      const b = await node(gotB);
      await b.subscribe('z');
      await broker.publish('z', input(1), KEEP);
      await broker.broadcastEvent({ type: 'leave', channel: 'z', client: 'k' });
      await until(() => gotB.events.length === 1, 'the event on node B');
      assert.equal(await broker.deleteChannel('z'), true);
      await until(() => gotB.deleted.includes('z'), 'the deletion on node B');
    });

    void test('history and epoch survive a node restart', async () => {
      const p = await broker.publish('r', input(1), KEEP);
      await broker.publish('r', input(2), KEEP);
      await broker.close();
      started = started.filter((b) => b !== broker);
      const again = await node();
      const h = await again.history('r', { limit: 10 });
      assert.equal(h.position.epoch, p.epoch);
      assert.deepEqual(offsets(h.publications), [1, 2]);
      assert.equal((await again.publish('r', input(3), KEEP)).offset, 3);
    });
  });
}
