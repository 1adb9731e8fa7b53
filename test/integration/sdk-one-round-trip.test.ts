/**
 * The SDK's WebSocket transport sends its subscribes right behind `connect`, without waiting for
 * the connect reply: a (re)connect with subscriptions costs one round trip. The replies can then
 * reach the SDK in one TCP read, the subscribe reply emitted by `ws` before the client has taken
 * the transport as its connection; the outcome must wait for that and still be delivered once,
 * with the recovered publications first.
 *
 * A TCP proxy over real sockets holds every server byte after the upgrade until a subscribe reply
 * has come, then writes them in one piece: a client that waited for the connect reply before
 * subscribing would never get there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { startRelay, type Relay } from '../helpers/relay.js';
import { PubLog, sdkClient } from '../helpers/sdk.js';
import { chan, publish, startServer, waitFor } from '../helpers/server.js';

void describe('SDK: connect and subscribes in one round trip', () => {
  let server: HeraldServer;
  let relay: Relay;
  /** Connections whose connect and subscribe replies were written to the client in one piece. */
  let joined = 0;

  before(async () => {
    server = await startServer({ dev: true });
    relay = await startRelay(server.address().port, () => {
      let upgraded = false;
      let held: Buffer[] | undefined = [];
      return (d, toClient) => {
        if (!upgraded) {
          upgraded = true; // the 101 answer: the server writes it alone
          return toClient(d);
        }
        if (!held) return toClient(d);
        held.push(d);
        const all = Buffer.concat(held);
        if (all.includes('"recovered"')) {
          held = undefined;
          joined++;
          toClient(all);
        }
      };
    });
  });
  after(async () => {
    await relay.close();
    await server.close();
  });

  void it('subscribes before the connect reply, and resumes the same way after the connection is lost', async () => {
    const c = sdkClient(relay.url, 'websocket', { user: 'alice' });
    const events: Array<{ resumed: boolean; recovered: boolean }> = [];
    try {
      const ch = chan('one-rtt');
      const other = chan('one-rtt');
      const sub = c.subscribe(ch);
      c.subscribe(other);
      sub.on('subscribed', (e) => events.push({ resumed: e.resumed, recovered: e.recovered }));
      const log = new PubLog(sub);
      await c.connect();
      await sub.ready();
      assert.equal(joined, 1);
      await publish(server, ch, 1);
      await log.count(1);
      relay.cut(); // the node is gone
      await publish(server, ch, 2); // published while the client is away
      await waitFor(() => joined === 2 && c.state === 'connected', 10_000, 'the resumed session');
      await publish(server, ch, 3);
      await log.count(3);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(log.data, [1, 2, 3]);
      assert.deepEqual(events, [
        { resumed: false, recovered: true },
        { resumed: true, recovered: true },
      ]);
    } finally {
      c.disconnect();
    }
  });

  void it('a refused connect fails the connection, not the subscriptions sent behind it', async () => {
    const c = sdkClient(server, 'websocket', { token: 'not-a-token' });
    const failed: string[] = [];
    try {
      const sub = c.subscribe(chan('one-rtt'));
      sub.on('error', (e) => failed.push(e.error.message));
      await assert.rejects(c.connect());
      assert.equal(c.state, 'closed');
      assert.deepEqual(failed, []);
    } finally {
      c.disconnect();
    }
  });
});
