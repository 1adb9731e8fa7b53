/**
 * Work-queue consumers are flow-controlled on their socket: a backlog reaches a slow reader at
 * the pace it reads. Replays the loss of issue 12 (a backlog written in one loop, the consumer
 * cut as slow, and `ack: auto` messages counted as delivered) with the real stomp.js client.
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import type { IMessage } from '@stomp/stompjs';
import { WebSocket } from 'ws';
import { chan, sleep, startServer, waitFor } from '../helpers/server.js';
import { connectStomp, stompUrl, withReceipt } from '../helpers/stomp.js';

const MESSAGES = 50;
const BODY_BYTES = 60_000;
const MAX_OUTBOUND = 256 * 1024;

for (const ack of ['auto', 'client-individual'] as const) {
  void test(`ack:${ack}: ${MESSAGES} queued messages reach a paused, then slow reader, none lost and the consumer never cut`, async () => {
    // Pings every 10 s: a reader this slow would otherwise miss a pong and be dropped as dead.
    const server = await startServer({ dev: true, limits: { maxOutboundBytes: MAX_OUTBOUND }, timing: { pingIntervalMs: 10_000 } });
    let slow = 0;
    const onSlow = (): void => void slow++;
    subscribe('herald:slow-consumer', onSlow);
    try {
      const name = chan('backlog');
      const q = `/queue/${name}`;
      const producer = await connectStomp(server, { connectHeaders: { login: 'producer' } });
      for (let i = 0; i < MESSAGES; i++) producer.client.publish({ destination: q, body: `${i}:`.padEnd(BODY_BYTES, 'x') });
      await withReceipt(producer.client, (receipt) => producer.client.publish({ destination: q, body: 'last', headers: { receipt } }));
      const queue = server.stomp!.queues.peek(name)!;
      assert.equal(queue.depth, MESSAGES + 1);

      // The highest count of unsent bytes the server held for the consumer, seen after each write.
      let peak = 0;
      server.http.once('connection', (s: Duplex & { writableLength: number }) => {
        const write = s.write.bind(s) as (...args: unknown[]) => boolean;
        s.write = ((...args: unknown[]) => {
          const ok = write(...args);
          peak = Math.max(peak, s.writableLength);
          return ok;
        }) as typeof s.write;
      });
      let socket: WebSocket | undefined;
      const consumer = await connectStomp(server, {
        connectHeaders: { login: 'consumer' },
        webSocketFactory: () => (socket = new WebSocket(stompUrl(server), ['v12.stomp'])),
      });
      const raw = (socket as unknown as { _socket: Duplex })._socket;
      // The reader stops reading before the backlog starts to flow.
      raw.pause();
      const got: IMessage[] = [];
      consumer.client.subscribe(
        q,
        (m) => {
          got.push(m);
          if (ack !== 'auto') m.ack();
        },
        { ack },
      );
      await sleep(300);
      // Then it reads slowly: a little at a time.
      while (got.length < MESSAGES + 1) {
        raw.resume();
        await sleep(5);
        raw.pause();
        await sleep(20);
        assert.ok(consumer.client.connected, `the consumer stays connected (${got.length} received)`);
      }
      raw.resume();
      await waitFor(() => got.length === MESSAGES + 1, 5_000, 'every message');
      assert.deepEqual(
        got.map((m) => m.body.split(':')[0]),
        [...Array.from({ length: MESSAGES }, (_, i) => String(i)), 'last'],
      );
      assert.equal(slow, 0, 'the consumer was never cut as slow');
      // One 64 KiB window plus the frame that crossed it, never the whole backlog.
      assert.ok(peak < 65_536 + BODY_BYTES + 1_024, `at most one window buffered for the consumer (peak ${peak} bytes)`);
      assert.equal(queue.depth, 0);
      await consumer.client.deactivate();
      await producer.client.deactivate();
    } finally {
      unsubscribe('herald:slow-consumer', onSlow);
      await server.close();
    }
  });
}
