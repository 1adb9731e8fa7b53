/**
 * The SDK's pub/sub API against a real server, on each transport: subscribe and receive, client
 * publish, history, resume after the server drops the connection, `recovered:false` after a
 * restart loses history, and stop codes.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { HeraldClient } from '../../clients/js/src/index.js';
import { DisconnectCode, HeraldClientError } from '../../clients/js/src/index.js';
import type { HeraldServer } from '../../src/index.js';
import { PubLog, sdkClient, TRANSPORTS } from '../helpers/sdk.js';
import { chan, publish, startServer, waitFor } from '../helpers/server.js';

const CONFIG = { dev: true, namespaces: [{ name: 'chat', allowPublish: true }] };

for (const transport of TRANSPORTS) {
  void describe(`SDK pub/sub over ${transport}`, () => {
    let server: HeraldServer;
    const clients: HeraldClient[] = [];
    const client = (over = {}): HeraldClient => {
      const c = sdkClient(server, transport, { user: 'alice', ...over });
      clients.push(c);
      return c;
    };

    before(async () => {
      server = await startServer(CONFIG);
    });
    afterEach(() => {
      for (const c of clients.splice(0)) c.disconnect();
    });
    after(async () => {
      await server.close();
    });

    void it('connects on the forced transport and receives publications in order', async () => {
      const c = client();
      await c.connect();
      assert.equal(c.transport, transport);
      const ch = chan('sdk');
      const sub = c.subscribe(ch);
      const log = new PubLog(sub);
      const ev = await sub.ready();
      assert.equal(ev.resumed, false);
      for (let i = 1; i <= 5; i++) await publish(server, ch, { n: i });
      await log.count(5);
      assert.deepEqual(
        log.data,
        [1, 2, 3, 4, 5].map((n) => ({ n })),
      );
      assert.equal(sub.position?.offset, 5);
    });

    void it('replays the last N publications on subscribe and reads history', async () => {
      const ch = chan('sdk');
      for (let i = 1; i <= 4; i++) await publish(server, ch, i);
      const c = client();
      const sub = c.subscribe(ch, { last: 2 });
      const log = new PubLog(sub);
      await c.connect();
      await log.count(2);
      assert.deepEqual(log.data, [3, 4]);
      const h = await c.history(ch, { limit: 10 });
      assert.deepEqual(
        h.publications.map((p) => p.data),
        [1, 2, 3, 4],
      );
      assert.equal(h.offset, 4);
    });

    void it('publishes from the client to other subscribers, with publisher info', async () => {
      const a = client({ user: 'alice' });
      const b = client({ user: 'bob' });
      const ch = `chat:${chan('room')}`;
      const sub = b.subscribe(ch);
      const log = new PubLog(sub);
      await Promise.all([a.connect(), b.connect()]);
      await sub.ready();
      const r = await a.publish(ch, { text: 'hi' });
      assert.equal(r.offset, 1);
      await log.count(1);
      assert.deepEqual(log.pubs[0]!.data, { text: 'hi' });
      assert.equal(log.pubs[0]!.info?.user, 'alice');
    });

    void it('rejects a forbidden publish with the server error code', async () => {
      const c = client();
      await c.connect();
      await assert.rejects(c.publish(chan('nopub'), 1), (e: HeraldClientError) => e.errorName === 'HERALD_ERR_FORBIDDEN' && e.code > 0);
    });

    void it('reports a refused subscription as an error event and drops it', async () => {
      const c = client();
      await c.connect();
      const sub = c.subscribe('inbox:someone-else');
      await assert.rejects(sub.ready(), (e: HeraldClientError) => e.errorName === 'HERALD_ERR_FORBIDDEN' || e.errorName === 'HERALD_ERR_UNAUTHORIZED');
      assert.equal(c.getSubscription('inbox:someone-else'), undefined);
    });

    void it('reconnects after the server drops the connection and resumes without gaps or duplicates', async () => {
      const c = client();
      const ch = chan('resume');
      const sub = c.subscribe(ch);
      const log = new PubLog(sub);
      const subscribed: Array<{ resumed: boolean; recovered: boolean }> = [];
      sub.on('subscribed', (e) => subscribed.push(e));
      const disconnects: number[] = [];
      c.on('disconnected', (e) => disconnects.push(e.code));
      await c.connect();
      await sub.ready();
      await publish(server, ch, 1);
      await log.count(1);
      // A long-poll client is only connected while a poll is in flight.
      await waitFor(() => server.core.hub.subscriberCount(ch) > 0, 3_000, 'a live subscription');
      server.core.disconnectAll(DisconnectCode.SERVER_ERROR, 'test drop');
      await publish(server, ch, 2);
      await publish(server, ch, 3);
      await waitFor(() => disconnects.length > 0, 3_000, 'disconnected event');
      assert.equal(disconnects[0], DisconnectCode.SERVER_ERROR);
      await waitFor(() => c.state === 'connected' && subscribed.length >= 2, 5_000, 'resubscribed');
      await publish(server, ch, 4);
      await log.count(4);
      assert.deepEqual(log.data, [1, 2, 3, 4]);
      assert.deepEqual(subscribed[1], { ...subscribed[1], resumed: true, recovered: true });
    });

    void it('stops without reconnecting when the identity is refused', async () => {
      const strict = await startServer({ dev: false });
      try {
        const c = sdkClient(strict, transport, { user: 'mallory' });
        clients.push(c);
        const errors: string[] = [];
        c.on('error', (e) => errors.push(e.error.errorName));
        await assert.rejects(c.connect());
        assert.equal(c.state, 'closed');
        assert.ok(errors.includes('HERALD_ERR_UNAUTHORIZED'), errors.join());
      } finally {
        await strict.close();
      }
    });

    void it('surfaces recovered:false when a restarted server lost the channel history', async () => {
      let node = await startServer(CONFIG);
      const port = node.address().port;
      const c = sdkClient(node, transport, { user: 'alice' });
      clients.push(c);
      const ch = chan('restart');
      const sub = c.subscribe(ch);
      const log = new PubLog(sub);
      const events: Array<{ resumed: boolean; recovered: boolean }> = [];
      sub.on('subscribed', (e) => events.push(e));
      await c.connect();
      await sub.ready();
      await publish(node, ch, 'before');
      await log.count(1);
      await node.close();
      node = await startServer({ ...CONFIG, port });
      try {
        await waitFor(() => events.length >= 2, 6_000, 'resubscribed after restart');
        assert.equal(events[1]!.resumed, true);
        assert.equal(events[1]!.recovered, false);
        await publish(node, ch, 'after');
        await log.count(2);
        assert.deepEqual(log.data, ['before', 'after']);
      } finally {
        c.disconnect();
        await node.close();
      }
    });
  });
}
