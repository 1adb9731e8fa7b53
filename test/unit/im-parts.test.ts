import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { directConversationId, inboxChannel } from '../../src/core/im/service.js';
import { RateLimiter } from '../../src/core/im/rate-limit.js';
import { messageEventJson, messageJson } from '../../src/core/im/wire.js';
import { MemoryPresence } from '../../src/engines/presence-memory.js';

describe('IM rate limiter', () => {
  test('allows a burst of twice the rate, then refills at the rate', () => {
    const rl = new RateLimiter(5);
    const t0 = 1_000_000;
    let ok = 0;
    for (let i = 0; i < 20; i++) if (rl.take('u', t0)) ok++;
    assert.equal(ok, 10);
    assert.equal(rl.take('u', t0 + 100), false, 'half a token after 100 ms');
    assert.equal(rl.take('u', t0 + 200), true, 'one token after 200 ms');
    assert.equal(rl.take('other', t0), true, 'buckets are per key');
  });
});

describe('memory presence', () => {
  test('aggregates sessions over nodes and keeps the chosen state and last-seen time', async () => {
    const p = new MemoryPresence();
    assert.deepEqual(await p.get(['a']), [{ user: 'a', state: 'offline' }]);
    let r = await p.setConnected('a', 'n1', true);
    assert.equal(r.state, 'online');
    await p.setConnected('a', 'n2', true);
    r = await p.setChosen('a', 'away', 'lunch');
    assert.deepEqual([r.state, r.status], ['away', 'lunch']);
    r = await p.setConnected('a', 'n1', false);
    assert.equal(r.state, 'away', 'still connected on n2');
    r = await p.setConnected('a', 'n2', false);
    assert.equal(r.state, 'offline');
    assert.equal(typeof r.lastSeen, 'number');
    await p.close();
  });
});

describe('IM wire forms', () => {
  const m = { id: 'm1', conversation: 'd:a:b', seq: 3, sender: 'a', kind: 'message' as const, payload: '{"text":"hi"}', time: 5 };
  test('embeds the stored JSON payload as is', () => {
    assert.deepEqual(JSON.parse(messageJson(m)), { id: 'm1', conversation: 'd:a:b', seq: 3, from: 'a', kind: 'message', time: 5, data: { text: 'hi' } });
    const recalled = JSON.parse(messageJson({ ...m, payload: 'null', recalled: true, editedAt: 7 }));
    assert.equal(recalled.data, null);
    assert.equal(recalled.recalled, true);
    assert.equal(recalled.editedAt, 7);
  });
  test('message events carry the inbox seq, or none for large-group pushes', () => {
    assert.equal(JSON.parse(messageEventJson(m, 9)).seq, 9);
    assert.equal(JSON.parse(messageEventJson(m, 9, true)).redelivered, true);
    assert.equal('seq' in JSON.parse(messageEventJson(m, undefined)), false);
  });
  test('direct conversation ids do not depend on who writes first; inbox channels are per user', () => {
    assert.equal(directConversationId('bob', 'alice'), 'd:alice:bob');
    assert.equal(directConversationId('alice', 'bob'), 'd:alice:bob');
    assert.equal(inboxChannel('bob'), 'inbox:bob');
  });
});
