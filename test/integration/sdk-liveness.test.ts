/**
 * A WebSocket link that goes silent without closing (a dead host, a stuck middlebox) is noticed
 * by the SDK's ping and replaced, and the subscription resumes without loss.
 *
 * The silence is produced by a TCP proxy over real sockets that stops forwarding the connections
 * it already has (new connections pass): a real peer cannot be made to hang on demand.
 */
import assert from 'node:assert/strict';
import { connect, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { PubLog, sdkClient } from '../helpers/sdk.js';
import { chan, publish, startServer, waitFor } from '../helpers/server.js';

void describe('SDK liveness over WebSocket', () => {
  let server: HeraldServer;
  let proxy: Server;
  let proxyUrl: string;
  const pairs: Array<{ a: Socket; b: Socket; frozen: boolean }> = [];

  before(async () => {
    server = await startServer({ dev: true });
    const port = server.address().port;
    proxy = createNetServer((a) => {
      const b = connect(port, '127.0.0.1');
      const pair = { a, b, frozen: false };
      pairs.push(pair);
      a.on('data', (d) => void (pair.frozen || b.write(d)));
      b.on('data', (d) => void (pair.frozen || a.write(d)));
      const end = (): void => {
        a.destroy();
        b.destroy();
      };
      a.on('error', end).on('close', () => pair.frozen || end());
      b.on('error', end).on('close', () => pair.frozen || end());
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as { port: number }).port}`;
  });
  after(async () => {
    for (const p of pairs) {
      p.a.destroy();
      p.b.destroy();
    }
    await new Promise((r) => proxy.close(r));
    await server.close();
  });

  void it('reconnects when pings go unanswered and resumes the channel', async () => {
    const c = sdkClient(proxyUrl, 'websocket', { user: 'alice', commandTimeoutMs: 800 });
    try {
      const ch = chan('live');
      const sub = c.subscribe(ch);
      const log = new PubLog(sub);
      const reasons: string[] = [];
      c.on('disconnected', (e) => reasons.push(e.reason));
      await c.connect();
      await sub.ready();
      await publish(server, ch, 1);
      await log.count(1);
      for (const p of pairs) p.frozen = true; // the link goes silent; nothing is closed
      await publish(server, ch, 2);
      await waitFor(() => reasons.length > 0, 10_000, 'liveness disconnect');
      assert.equal(reasons[0], 'no reply to ping');
      await waitFor(() => c.state === 'connected', 10_000, 'reconnected');
      await publish(server, ch, 3);
      await log.count(3);
      assert.deepEqual(log.data, [1, 2, 3]);
    } finally {
      c.disconnect();
    }
  });
});
