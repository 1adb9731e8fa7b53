/**
 * A resubscribe reply and a live publication that reach the SDK in one TCP read: Node's `ws`
 * (≥ 8.17) emits both frames synchronously, so the live publication is seen before the reply's
 * promise handler runs. The SDK must still deliver the recovered publications first, with no
 * gap and no duplicate (found by bench/failover.js: reconnect storms after a node was killed).
 *
 * The coalescing is produced by a TCP proxy over real sockets that holds the server's bytes from
 * the resubscribe reply on and writes them in one piece: a real server cannot be made to put two
 * frames into one segment on demand.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { startRelay, type Relay } from '../helpers/relay.js';
import { PubLog, sdkClient } from '../helpers/sdk.js';
import { chan, publish, startServer, waitFor } from '../helpers/server.js';

void describe('SDK resume over WebSocket', () => {
  let server: HeraldServer;
  let relay: Relay;
  /** Armed: hold server → client bytes from the next subscribe reply on. */
  let arm = false;
  let held: Buffer[] | undefined;
  let flush: (() => void) | undefined;

  before(async () => {
    server = await startServer({ dev: true });
    relay = await startRelay(server.address().port, () => (d, toClient) => {
      if (arm && !held && d.includes('"recovered"')) {
        held = [];
        flush = () => {
          toClient(Buffer.concat(held!));
          held = undefined;
          arm = false;
        };
      }
      if (held) held.push(d);
      else toClient(d);
    });
  });
  after(async () => {
    await relay.close();
    await server.close();
  });

  void it('delivers the recovered publications before a live one that arrived in the same read', async () => {
    const c = sdkClient(relay.url, 'websocket', { user: 'alice' });
    try {
      const ch = chan('race');
      const sub = c.subscribe(ch);
      const log = new PubLog(sub);
      await c.connect();
      await sub.ready();
      await publish(server, ch, 1);
      await log.count(1);
      arm = true;
      relay.cut(); // the node is gone
      await publish(server, ch, 2); // published while the client is away
      await waitFor(() => held !== undefined, 10_000, 'the resubscribe reply');
      await publish(server, ch, 3); // live, written by the server after the reply
      await waitFor(() => Buffer.concat(held!).includes('"data":3'), 5_000, 'the live publication');
      assert.ok(Buffer.concat(held!).includes('"data":2'), 'the reply recovers 2');
      flush!();
      await log.count(3);
      await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(log.data, [1, 2, 3]);
    } finally {
      c.disconnect();
    }
  });
});
