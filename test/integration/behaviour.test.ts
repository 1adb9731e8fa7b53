/**
 * One behaviour suite over every native transport: WebSocket, SSE (resuming with `since` and
 * with the Last-Event-ID header), long-poll and chunked NDJSON streaming. The same resume
 * semantics must hold on all of them.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { chan, publish, startServer } from '../helpers/server.js';
import { type Session, subscribe, TRANSPORTS } from '../helpers/transports.js';

const CONFIG = {
  namespaces: [
    { name: 'short', historySize: 3 },
    { name: 'burst', historySize: 1000 },
  ],
};

async function del(server: HeraldServer, channel: string): Promise<number> {
  const res = await fetch(`${server.url()}/api/channels/${encodeURIComponent(channel)}`, { method: 'DELETE' });
  await res.body?.cancel();
  return res.status;
}

for (const transport of TRANSPORTS) {
  describe(`behaviour over ${transport}`, () => {
    let server: HeraldServer;
    const sessions: Session[] = [];
    const open = async (...args: Parameters<typeof subscribe> extends [unknown, unknown, ...infer R] ? R : never): Promise<Session> => {
      const s = await subscribe(transport, server, ...args);
      sessions.push(s);
      return s;
    };

    before(async () => {
      server = await startServer(CONFIG);
    });
    afterEach(async () => {
      for (const s of sessions.splice(0)) await s.close();
    });
    after(async () => {
      await server.close();
    });

    test('a subscription without a position receives only publications made after it', async () => {
      const ch = chan();
      await publish(server, ch, 'old-1');
      await publish(server, ch, 'old-2');
      const s = await open([ch]);
      await publish(server, ch, 'new-1');
      await publish(server, ch, 'new-2');
      const got = await s.pubs.takeN(2);
      assert.deepEqual(
        got.map((p) => p.data),
        ['new-1', 'new-2'],
      );
      assert.deepEqual(
        got.map((p) => p.offset),
        [3, 4],
      );
      assert.equal(s.recovered(), true);
    });

    test('last=N starts with the newest N publications, then live ones', async () => {
      const ch = chan();
      for (let i = 1; i <= 5; i++) await publish(server, ch, i);
      const s = await open([ch], { last: 3 });
      const history = await s.pubs.takeN(3);
      assert.deepEqual(
        history.map((p) => p.data),
        [3, 4, 5],
      );
      await publish(server, ch, 6);
      assert.equal((await s.pubs.take()).data, 6);
    });

    test('resuming after a position delivers every publication missed, with recovered true', async () => {
      const ch = chan();
      const s1 = await open([ch]);
      for (let i = 1; i <= 3; i++) await publish(server, ch, i);
      await s1.pubs.takeN(3);
      const pos = s1.position();
      assert.match(pos, /^[\w-]+:3$/);
      await s1.close();
      await publish(server, ch, 4);
      await publish(server, ch, 5);
      const s2 = await open([ch], { since: pos });
      const missed = await s2.pubs.takeN(2);
      assert.deepEqual(
        missed.map((p) => p.data),
        [4, 5],
      );
      assert.equal(s2.recovered(), true);
      await publish(server, ch, 6);
      assert.deepEqual((await s2.pubs.take()).data, 6);
      assert.equal(s2.pubs.items.length, 0, 'no duplicate after the live publication');
    });

    test('resuming from a position evicted from history says recovered false and delivers what is kept', async () => {
      const ch = chan('short:evict');
      const s1 = await open([ch]);
      await publish(server, ch, 1);
      await s1.pubs.take();
      const pos = s1.position();
      await s1.close();
      for (let i = 2; i <= 6; i++) await publish(server, ch, i);
      const s2 = await open([ch], { since: pos });
      const kept = await s2.pubs.takeN(3);
      assert.deepEqual(
        kept.map((p) => p.data),
        [4, 5, 6],
      );
      assert.equal(s2.recovered(), false);
    });

    test('resuming after the channel was deleted (new epoch) says recovered false', async () => {
      const ch = chan();
      const s1 = await open([ch]);
      await publish(server, ch, 'a');
      const first = await s1.pubs.take();
      const pos = s1.position();
      await s1.close();
      assert.equal(await del(server, ch), 200);
      await publish(server, ch, 'b');
      const s2 = await open([ch], { since: pos });
      const got = await s2.pubs.take();
      assert.equal(got.data, 'b');
      assert.notEqual(got.epoch, first.epoch);
      assert.equal(got.offset, 1);
      assert.equal(s2.recovered(), false);
    });

    test('resuming on a restarted memory-engine server (new epoch) says recovered false', async () => {
      const ch = chan();
      const other = await startServer(CONFIG);
      let pos: string;
      try {
        const s1 = await subscribe(transport, other, [ch]);
        await publish(other, ch, 'before-restart');
        await s1.pubs.take();
        pos = s1.position();
        await s1.close();
      } finally {
        await other.close();
      }
      await publish(server, ch, 'after-restart');
      const s2 = await open([ch], { since: pos });
      assert.equal((await s2.pubs.take()).data, 'after-restart');
      assert.equal(s2.recovered(), false);
    });

    test('a multi-channel subscription reports comma-joined positions and resumes every channel', async () => {
      const a = chan('multi-a');
      const b = chan('multi-b');
      const s1 = await open([a, b]);
      await publish(server, a, 'a1');
      await publish(server, b, 'b1');
      await publish(server, a, 'a2');
      await s1.pubs.takeN(3);
      const pos = s1.position();
      const parts = pos.split(',');
      assert.equal(parts.length, 2);
      assert.match(parts[0]!, /:2$/);
      assert.match(parts[1]!, /:1$/);
      await s1.close();
      await publish(server, b, 'b2');
      await publish(server, a, 'a3');
      const s2 = await open([a, b], { since: pos });
      const got = await s2.pubs.takeN(2);
      assert.deepEqual(got.map((p) => `${p.channel === a ? 'a' : 'b'}:${String(p.data)}`).sort(), ['a:a3', 'b:b2']);
      assert.equal(s2.recovered(), true);
    });

    test('deleting a channel tells its subscribers', async () => {
      const ch = chan();
      const s = await open([ch]);
      assert.equal(await del(server, ch), 200);
      const frame = await s.control.take((f) => f.type === 'unsubscribed');
      assert.equal(frame.channel, ch);
      assert.equal(frame.reason, 'deleted');
    });

    test('subscribing from a position while publications are in flight delivers each once, in order', async () => {
      const ch = chan('burst:recover');
      const [first] = await publish(server, ch, 1);
      const n = 120;
      const publishing = (async () => {
        for (let i = 2; i <= n; i += 6) await Promise.all(Array.from({ length: Math.min(6, n - i + 1) }, (_, k) => publish(server, ch, i + k)));
      })();
      const s = await open([ch], { since: `${first!.epoch}:0` });
      await publishing;
      const got = await s.pubs.takeN(n, () => true, 10_000);
      assert.deepEqual(
        got.map((p) => p.offset),
        Array.from({ length: n }, (_, i) => i + 1),
      );
      assert.equal(s.recovered(), true);
      await publish(server, ch, 'after');
      assert.equal((await s.pubs.take()).offset, n + 1, 'nothing duplicated before the next live publication');
    });

    test('a burst of concurrent publications arrives complete and in offset order', async () => {
      const ch = chan('burst:x');
      const s = await open([ch]);
      const n = 150;
      const results = await Promise.all(Array.from({ length: n }, (_, i) => publish(server, ch, i)));
      const byOffset = new Map(results.map((r, i) => [r[0]!.offset, i]));
      const got = await s.pubs.takeN(n, () => true, 10_000);
      assert.deepEqual(
        got.map((p) => p.offset),
        Array.from({ length: n }, (_, i) => i + 1),
      );
      for (const p of got) assert.equal(p.data, byOffset.get(p.offset));
    });
  });
}
