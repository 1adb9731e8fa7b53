/**
 * STOMP work queues are guarded like channels and bounded: replays the attacks of issue 12 (an
 * anonymous consumer taking another user's queue; queues and their bytes growing without bound)
 * and checks the queue depth is exported in /api/stats and /metrics.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import type { HeraldServer } from '../../src/index.js';
import { chan, startServer, waitFor } from '../helpers/server.js';
import { frame, RawStomp } from '../helpers/stomp.js';

const SECRET = 'stomp-queue-secret-0123456789abcdef';

function token(user: string, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject(user).setExpirationTime('1h').sign(new TextEncoder().encode(SECRET));
}

async function connectAs(server: HeraldServer, user?: string, claims: Record<string, unknown> = {}): Promise<RawStomp> {
  const headers: Record<string, string> = user ? { login: user, passcode: await token(user, claims) } : {};
  return (await RawStomp.connected(server, headers)).raw;
}

/** Send frames and expect ERROR (message matching `re`) then the close `code`. */
async function expectError(raw: RawStomp, frames: string, re: RegExp, code: number): Promise<void> {
  raw.send(frames);
  const f = await raw.next();
  assert.equal(f.command, 'ERROR', `${f.command}: ${f.body}`);
  assert.match(`${f.headers.message} ${f.body}`, re);
  assert.equal((await raw.closed).code, code);
}

describe('STOMP queue access', () => {
  let server: HeraldServer;
  before(async () => {
    server = await startServer({
      auth: { hmacSecret: SECRET },
      stomp: { maxQueues: 4, maxQueuedBytes: 4_096 },
    });
  });
  after(async () => {
    await server.close();
  });

  test("an anonymous client can neither consume nor fill a user's queue; the messages stay queued", async () => {
    const name = chan('alice-jobs');
    const alice = await connectAs(server, 'alice');
    try {
      alice.send(frame('SEND', { destination: `/queue/${name}`, receipt: 'r1' }, 'secret work'));
      assert.equal((await alice.next()).command, 'RECEIPT');
      const thief = await connectAs(server);
      await expectError(thief, frame('SUBSCRIBE', { id: '0', destination: `/queue/${name}` }), /authenticated connection/, 3500);
      const spammer = await connectAs(server);
      await expectError(spammer, frame('SEND', { destination: `/queue/${name}` }, 'junk'), /authenticated connection/, 3500);
      assert.equal(server.stomp!.queues.peek(name)!.depth, 1, 'the message is still there for its consumer');
      alice.send(frame('SUBSCRIBE', { id: '0', destination: `/queue/${name}` }));
      const m = await alice.next();
      assert.equal(m.command, 'MESSAGE');
      assert.equal(m.body, 'secret work');
    } finally {
      await alice.close();
    }
  });

  test("the token's channels claim applies to queues", async () => {
    const bob = await connectAs(server, 'bob', { channels: ['bob-*'] });
    await expectError(bob, frame('SUBSCRIBE', { id: '0', destination: `/queue/${chan('alice')}` }), /does not grant/, 3501);
    const bob2 = await connectAs(server, 'bob', { channels: ['bob-*'] });
    await expectError(bob2, frame('SEND', { destination: `/queue/${chan('alice')}` }, 'x'), /does not grant/, 3501);
    const ok = await connectAs(server, 'bob', { channels: ['bob-*'] });
    try {
      ok.send(frame('SUBSCRIBE', { id: '0', destination: `/queue/${chan('bob-')}`, receipt: 'r' }));
      assert.equal((await ok.next()).command, 'RECEIPT');
    } finally {
      await ok.close();
    }
  });

  test('queued bytes and the number of queues are capped (ERROR HERALD_ERR_LIMIT_EXCEEDED) and exported', async () => {
    const queues = server.stomp!.queues;
    assert.equal(queues.stats().queues, 0);
    const p = await connectAs(server, 'producer');
    const name = chan('big');
    // 4096 bytes: three 1000-byte bodies (+64 bytes each) fit, a fourth does not.
    for (let i = 0; i < 3; i++) {
      p.send(frame('SEND', { destination: `/queue/${name}`, receipt: `r${i}` }, 'x'.repeat(1_000)));
      assert.equal((await p.next()).command, 'RECEIPT');
    }
    assert.equal(queues.bytes, 3 * 1_064);
    const stats = (await (await fetch(`${server.url()}/api/stats`)).json()) as { stompQueues: { queues: number; waiting: number; bytes: number } };
    assert.deepEqual(
      { queues: stats.stompQueues.queues, waiting: stats.stompQueues.waiting, bytes: stats.stompQueues.bytes },
      { queues: 1, waiting: 3, bytes: 3_192 },
    );
    const metrics = await (await fetch(`${server.url()}/metrics`)).text();
    assert.match(metrics, /^herald_stomp_queue_messages\{state="waiting"\} 3$/m);
    assert.match(metrics, /^herald_stomp_queue_bytes 3192$/m);
    await expectError(p, frame('SEND', { destination: `/queue/${name}` }, 'x'.repeat(1_000)), /hold 4096 bytes already/, 3501);
    assert.equal(queues.bytes, 3 * 1_064, 'the refused message holds nothing');

    // Queue count: three more (four in all), then refused.
    const q = await connectAs(server, 'many');
    for (let i = 0; i < 3; i++) {
      q.send(frame('SUBSCRIBE', { id: String(i), destination: `/queue/${chan('n')}`, receipt: `s${i}` }));
      assert.equal((await q.next()).command, 'RECEIPT');
    }
    assert.equal(queues.stats().queues, 4);
    const more = await connectAs(server, 'more');
    await expectError(more, frame('SUBSCRIBE', { id: 'x', destination: `/queue/${chan('n')}` }), /holds 4 queues already/, 3501);
    await q.close();
    await waitFor(() => queues.stats().queues === 1, 2_000, 'idle queues dropped');

    // Consuming with acks releases the bytes.
    const c = await connectAs(server, 'consumer');
    c.send(frame('SUBSCRIBE', { id: '0', destination: `/queue/${name}`, ack: 'client-individual' }));
    for (let i = 0; i < 3; i++) {
      const m = await c.next();
      assert.equal(m.command, 'MESSAGE');
      if (i === 0) assert.equal(queues.stats().unacked + queues.stats().waiting, 3, 'delivered, unacknowledged messages still count');
      c.send(frame('ACK', { id: m.headers.ack! }));
    }
    await waitFor(() => queues.bytes === 0, 2_000, 'bytes released');
    await c.close();
  });
});
