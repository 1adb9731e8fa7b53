/**
 * STOMP limits and older protocol versions over raw frames: CONNECT timeout, frame rate,
 * subscriptions per connection, queue length, SEND size, 1.1/1.0 ACK forms, shutdown.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chan, sleep, startServer } from '../helpers/server.js';
import { frame, RawStomp } from '../helpers/stomp.js';

void describe('STOMP limits', () => {
  void test('a socket that never sends CONNECT gets ERROR and close 3006', async () => {
    const server = await startServer({ dev: true, timing: { connectTimeoutMs: 200 } });
    try {
      const raw = await RawStomp.open(server);
      const err = await raw.next(2_000);
      assert.equal(err.command, 'ERROR');
      assert.match(err.headers.message!, /CONNECT expected/);
      assert.equal((await raw.closed).code, 3006);
    } finally {
      await server.close();
    }
  });

  void test('frames beyond limits.commandsPerSecond: ERROR and close 3505', async () => {
    const server = await startServer({ dev: true, limits: { commandsPerSecond: 20 } });
    try {
      const { raw } = await RawStomp.connected(server, { login: 'flood' });
      const q = `/queue/${chan('flood')}`;
      raw.send(Array.from({ length: 30 }, (_, i) => frame('SEND', { destination: q }, `m${i}`)).join(''));
      const err = await raw.next();
      assert.equal(err.command, 'ERROR');
      assert.match(err.headers.message!, /Too many frames/);
      assert.equal((await raw.closed).code, 3505);
    } finally {
      await server.close();
    }
  });

  void test('subscriptions per connection, queue length and SEND size are capped', async () => {
    const server = await startServer({ dev: true, limits: { maxChannelsPerConnection: 2, maxMessageBytes: 100 }, stomp: { queueMaxLength: 2 } });
    try {
      const a = (await RawStomp.connected(server, { login: 'subs' })).raw;
      a.send(
        frame('SUBSCRIBE', { id: '1', destination: '/topic/a' }) +
          frame('SUBSCRIBE', { id: '2', destination: '/queue/b' }) +
          frame('SUBSCRIBE', { id: '3', destination: '/topic/c' }),
      );
      assert.match((await a.next()).headers.message!, /At most 2 subscriptions/);

      const q = `/queue/${chan('full')}`;
      const b = (await RawStomp.connected(server, { login: 'producer' })).raw;
      b.send(frame('SEND', { destination: q }, '1') + frame('SEND', { destination: q }, '2') + frame('SEND', { destination: q, receipt: 'third' }, '3'));
      const full = await b.next();
      assert.equal(full.command, 'ERROR');
      assert.equal(full.headers['receipt-id'], 'third');
      assert.match(full.headers.message!, /holds 2 messages/);
      // The two accepted messages wait for a consumer.
      const c = (await RawStomp.connected(server, { login: 'consumer' })).raw;
      c.send(frame('SUBSCRIBE', { id: 'q', destination: q }));
      assert.deepEqual([(await c.next()).body, (await c.next()).body], ['1', '2']);

      c.send(frame('SEND', { destination: q }, 'x'.repeat(101)));
      assert.match((await c.next()).headers.message!, /larger than 100 bytes/);
    } finally {
      await server.close();
    }
  });

  void test('STOMP 1.1 ACK (message-id + subscription) and 1.0 ACK (message-id) acknowledge queue messages', async () => {
    const server = await startServer({ dev: true });
    try {
      for (const version of ['1.1', '1.0']) {
        const q = `/queue/${chan(`v${version}`)}`;
        const raw = await RawStomp.open(server, [`v${version.replace('.', '')}.stomp`]);
        raw.send(frame('CONNECT', { 'accept-version': version, login: 'old' }));
        assert.equal((await raw.next()).headers.version, version);
        raw.send(
          frame('SUBSCRIBE', { id: 'old-sub', destination: q, ack: 'client-individual' }) +
            frame('SEND', { destination: q }, 'one') +
            frame('SEND', { destination: q }, 'two'),
        );
        const [one, two] = [await raw.next(), await raw.next()];
        assert.deepEqual([one.body, two.body], ['one', 'two']);
        const ack: Record<string, string> =
          version === '1.1' ? { 'message-id': one.headers['message-id']!, subscription: 'old-sub' } : { 'message-id': one.headers['message-id']! };
        raw.send(frame('ACK', { ...ack, receipt: 'acked' }));
        assert.equal((await raw.next()).headers['receipt-id'], 'acked');
        await raw.close();
        // Only the unacknowledged one is left for the next consumer.
        const next = (await RawStomp.connected(server, { login: 'next' })).raw;
        next.send(frame('SUBSCRIBE', { id: 's', destination: q }));
        const left = await next.next();
        assert.deepEqual([left.body, left.headers.redelivered], ['two', 'true']);
        await sleep(30);
        assert.equal(next.frames.items.length, 0);
        await next.close();
      }
    } finally {
      await server.close();
    }
  });

  void test('a kick through the server API reaches STOMP sessions: ERROR with the reason, then close 3503', async () => {
    const server = await startServer({ dev: true });
    try {
      const { raw } = await RawStomp.connected(server, { login: 'kicked' });
      const res = await fetch(`${server.url()}/api/disconnect`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ user: 'kicked', reason: 'bye' }),
      });
      assert.deepEqual(await res.json(), { disconnected: 1, nodes: 1 });
      const err = await raw.next();
      assert.deepEqual([err.command, err.headers.message, err.headers['herald-close-code']], ['ERROR', 'bye', '3503']);
      assert.equal((await raw.closed).code, 3503);
    } finally {
      await server.close();
    }
  });

  void test('shutdown closes STOMP connections with 3001 and does not wait for them', async () => {
    const server = await startServer({ dev: true });
    const { raw } = await RawStomp.connected(server, { login: 'leaving' });
    const t0 = Date.now();
    await server.close();
    assert.equal((await raw.closed).code, 3001);
    assert.ok(Date.now() - t0 < 1_000);
  });
});
