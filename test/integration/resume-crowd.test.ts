/**
 * Many native clients of one channel resuming at once (a reconnect storm) while publications
 * keep coming: their history reads are shared (core/history-reads.ts), and each client must
 * still see every publication after its own position exactly once, in order.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { WsClient, type Pub } from '../helpers/clients.js';
import { chan, publish, sleep, startServer, wsUrl } from '../helpers/server.js';

let server: HeraldServer;
before(async () => {
  server = await startServer({ dev: true });
});
after(async () => {
  await server.close();
});

void test('40 clients resume one channel from different positions at once during publishing: each gets every later publication once, in order', async () => {
  const ch = chan('crowd');
  let last = 0;
  let epoch = '';
  for (; last < 12;) ({ epoch, offset: last } = (await publish(server, ch, { n: last + 1 }))[0]!);
  const clients = await Promise.all(Array.from({ length: 40 }, () => WsClient.connected(wsUrl(server))));
  try {
    const seen = clients.map(() => [] as number[]);
    const sinces = clients.map((_, i) => i % 13);
    // Publications keep coming while the subscribes are in flight.
    const publishing = (async () => {
      for (let k = 0; k < 15; k++) last = (await publish(server, ch, { n: last + 1 }))[0]!.offset;
    })();
    const replies = await Promise.all(clients.map((c, i) => c.ok('subscribe', { channel: ch, since: `${epoch}:${sinces[i]}` })));
    for (const [i, r] of replies.entries()) {
      assert.equal(r.recovered, true);
      seen[i]!.push(...(r.publications as Pub[]).map((p) => p.offset));
    }
    await publishing;
    const total = last;
    await Promise.all(
      clients.map(async (c, i) => {
        while ((seen[i]!.at(-1) ?? sinces[i]!) < total) seen[i]!.push((await c.nextPub(ch)).offset);
      }),
    );
    for (const [i, offs] of seen.entries()) {
      assert.deepEqual(
        offs,
        Array.from({ length: total - sinces[i]! }, (_, k) => sinces[i]! + 1 + k),
        `client ${i} since ${sinces[i]}`,
      );
    }
    await sleep(100);
    for (const c of clients) assert.equal(c.pushes.items.filter((f) => f.type === 'pub').length, 0, 'no publication twice');
  } finally {
    await Promise.all(clients.map((c) => c.close()));
  }
});
