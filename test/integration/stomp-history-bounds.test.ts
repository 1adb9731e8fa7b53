/**
 * The history a STOMP SUBSCRIBE replays (`herald-last`) stays within `limits.maxOutboundBytes`:
 * the newest publications that fit, in order, the first MESSAGE saying how many older ones were
 * left out (`herald-history-omitted`). Replays issue 12's finding with the real stomp.js client:
 * `herald-last: 20` on a channel of 20 publications of 60 KB wrote 1.2 MB at once and cut the
 * reader as a slow consumer (WebSocket 1006) for its own SUBSCRIBE.
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { test } from 'node:test';
import type { IMessage } from '@stomp/stompjs';
import { Inbox } from '../helpers/clients.js';
import { chan, publish, startServer } from '../helpers/server.js';
import { connectStomp, withReceipt } from '../helpers/stomp.js';

const BODY = 'x'.repeat(60_000);
const COUNT = 20;

test('herald-last: 20 over 20 publications of 60 KB replays the newest that fit within limits.maxOutboundBytes, says how many it left out, and keeps the reader', async () => {
  // The default limit (1 MiB): 1.2 MB of history does not fit.
  const server = await startServer({ dev: true });
  const max = server.core.config.limits.maxOutboundBytes;
  let slow = 0;
  const onSlow = (): void => void slow++;
  subscribe('herald:slow-consumer', onSlow);
  const h = await connectStomp(server, { connectHeaders: { login: 'reader' } });
  try {
    const ch = chan('replay');
    for (let i = 0; i < COUNT; i++) await publish(server, ch, { i, body: BODY });
    const messages = new Inbox<IMessage>();
    const cut = h.closed.then((code) => Promise.reject(new Error(`the reader was cut by its own SUBSCRIBE (close ${code})`)));
    await Promise.race([
      withReceipt(h.client, (receipt) => h.client.subscribe(`/topic/${ch}`, (m) => messages.put(m), { 'herald-last': String(COUNT), receipt })),
      cut,
    ]);
    // The replay is written before the RECEIPT, and stomp.js handles frames in order.
    const replayed = messages.items.splice(0);
    const got = replayed.map((m) => (JSON.parse(m.body) as { i: number }).i);
    const kept = got.length;
    assert.ok(kept >= 1 && kept < COUNT, `some history left out (${kept} replayed)`);
    assert.deepEqual(
      got,
      Array.from({ length: kept }, (_, k) => COUNT - kept + k),
      'the newest that fit, oldest first',
    );
    const bytes = replayed.reduce((sum, m) => sum + m.binaryBody.length, 0);
    assert.ok(bytes <= max, `the replay stays within limits.maxOutboundBytes (${bytes} of ${max} bytes)`);
    assert.ok(bytes + 60_000 > max - 1_024, `and leaves out only what does not fit (${bytes} of ${max} bytes)`);
    assert.equal(replayed[0]!.headers['herald-history-omitted'], String(COUNT - kept), 'the first MESSAGE says how many were left out');
    assert.ok(
      replayed.slice(1).every((m) => m.headers['herald-history-omitted'] === undefined),
      'only the first',
    );

    // The reader was not cut: live publications follow on the same connection.
    await publish(server, ch, { i: COUNT, body: 'live' });
    const live = await messages.take();
    assert.equal((JSON.parse(live.body) as { i: number }).i, COUNT);
    assert.equal(live.headers['herald-history-omitted'], undefined);
    assert.ok(h.client.connected, 'the connection stays open');
    assert.equal(slow, 0, 'never cut as a slow consumer');

    // A replay that fits whole has no marker.
    const all = new Inbox<IMessage>();
    await withReceipt(h.client, (receipt) => h.client.subscribe(`/topic/${ch}`, (m) => all.put(m), { 'herald-last': '3', receipt }));
    const three = await all.takeN(3);
    assert.deepEqual(
      three.map((m) => (JSON.parse(m.body) as { i: number }).i),
      [COUNT - 2, COUNT - 1, COUNT],
    );
    assert.ok(three.every((m) => m.headers['herald-history-omitted'] === undefined));
  } finally {
    unsubscribe('herald:slow-consumer', onSlow);
    await h.client.deactivate();
    await server.close();
  }
});
