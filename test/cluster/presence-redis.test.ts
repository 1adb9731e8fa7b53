/**
 * Redis presence: the same behaviours as the memory engine, aggregated over nodes (two engine
 * instances stand for two nodes), plus expiry of a crashed node's sessions by TTL.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import type { PresenceStore } from '../../src/core/im/presence.js';
import { MemoryPresence } from '../../src/engines/presence-memory.js';
import { RedisPresence } from '../../src/engines/presence-redis.js';
import { deleteKeys, SHARED_REDIS_URL, testPrefix } from './redis.js';

const prefix = testPrefix('presence');
after(async () => {
  await deleteKeys(SHARED_REDIS_URL, prefix);
});

const engines: Array<[string, () => PresenceStore]> = [
  ['memory', () => new MemoryPresence()],
  ['redis', () => new RedisPresence({ url: SHARED_REDIS_URL, prefix })],
];

let seq = 0;
for (const [name, make] of engines) {
  void test(`presence (${name}): online while any node has a session, offline with lastSeen after the last`, async () => {
    const p = make();
    const u = `user-${++seq}`;
    try {
      assert.deepEqual(await p.get([u]), [{ user: u, state: 'offline' }]);
      assert.equal((await p.setConnected(u, 'n1', true)).state, 'online');
      assert.equal((await p.setConnected(u, 'n2', true)).state, 'online');
      assert.equal((await p.setConnected(u, 'n1', false)).state, 'online');
      const off = await p.setConnected(u, 'n2', false);
      assert.equal(off.state, 'offline');
      assert.ok(off.lastSeen && Math.abs(off.lastSeen - Date.now()) < 5_000);
    } finally {
      await p.close();
    }
  });

  void test(`presence (${name}): the chosen state and status show while online`, async () => {
    const p = make();
    const u = `user-${++seq}`;
    try {
      await p.setConnected(u, 'n1', true);
      assert.deepEqual(await p.setChosen(u, 'busy', 'in a meeting'), {
        user: u,
        state: 'busy',
        status: 'in a meeting',
        lastSeen: (await p.get([u]))[0]!.lastSeen,
      });
      const [r] = await p.get([u]);
      assert.equal(r!.state, 'busy');
      assert.equal((await p.setChosen(u, 'away')).status, undefined);
      await p.setConnected(u, 'n1', false);
      assert.equal((await p.get([u]))[0]!.state, 'offline');
    } finally {
      await p.close();
    }
  });
}

void test('presence (redis): nodes see each other’s sessions; a crashed node’s sessions expire by TTL', async () => {
  const a = new RedisPresence({ url: SHARED_REDIS_URL, prefix, ttlMs: 600 });
  const b = new RedisPresence({ url: SHARED_REDIS_URL, prefix, ttlMs: 600 });
  const u = `user-${++seq}`;
  try {
    await a.setConnected(u, 'node-a', true);
    await a.setChosen(u, 'away');
    assert.equal((await b.get([u]))[0]!.state, 'away');
    // Node A keeps refreshing: still online well past one TTL.
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal((await b.get([u]))[0]!.state, 'away');
    // Node A dies (no clean disconnect): the session expires.
    await a.close();
    await new Promise((r) => setTimeout(r, 900));
    assert.equal((await b.get([u]))[0]!.state, 'offline');
  } finally {
    await a.close();
    await b.close();
  }
});
