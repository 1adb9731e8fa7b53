/**
 * STOMP clients under the backend integration, against the real example backend
 * (examples/backend.ts): the subscribe hook and the publish proxy (accept, modify, reject) apply
 * to SUBSCRIBE and SEND as they do to native clients.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type ExampleBackend, startBackend } from '../../examples/backend.js';
import type { HeraldServer } from '../../src/index.js';
import { WsClient } from '../helpers/clients.js';
import { chan, startServer, wsUrl } from '../helpers/server.js';
import { connectStomp, type StompHandle, withReceipt } from '../helpers/stomp.js';

void describe('STOMP with backend hooks', () => {
  let backend: ExampleBackend;
  let server: HeraldServer;
  const open: StompHandle[] = [];
  const connect = async (login: string): Promise<StompHandle> => {
    const h = await connectStomp(server, { connectHeaders: { login } });
    open.push(h);
    return h;
  };

  before(async () => {
    backend = await startBackend();
    server = await startServer({
      dev: true,
      namespaces: [{ name: 'chat', allowPublish: true }],
      im: { storePath: ':memory:' },
      backend: { url: `${backend.url}/herald`, subscribePath: '/subscribe', publishPath: '/publish', timeoutMs: 1_000 },
    });
  });
  after(async () => {
    for (const h of open) await h.client.deactivate();
    await server.close();
    await backend.close();
  });

  void test('the subscribe hook refuses a SUBSCRIBE with ERROR (close 3501) and allows others', async () => {
    const ok = await connect('sub-ok');
    await withReceipt(ok.client, (receipt) => ok.client.subscribe(`/topic/${chan('open')}`, () => undefined, { receipt }));
    const h = await connect('sub-denied');
    h.client.subscribe(`/topic/forbidden:${chan('x')}`, () => undefined);
    const err = await h.errors.take();
    assert.match(err.headers.message!, /denied by the backend/);
    assert.equal(await h.closed, 3501);
  });

  void test('the subscribe hook judges queue consumers too (asked with queue: true)', async () => {
    const h = await connect('queue-denied');
    h.client.subscribe(`/queue/forbidden:${chan('q')}`, () => undefined);
    const err = await h.errors.take();
    assert.match(err.headers.message!, /denied by the backend/);
    assert.equal(await h.closed, 3501);
  });

  void test('the publish proxy moderates SEND: modified bodies reach native subscribers, rejected ones get ERROR', async () => {
    const ch = `chat:${chan('mod')}`;
    const native = await WsClient.connected(wsUrl(server), { user: 'reader' });
    try {
      await native.ok('subscribe', { channel: ch });
      const h = await connect('writer');
      await withReceipt(h.client, (receipt) =>
        h.client.publish({ destination: `/topic/${ch}`, body: JSON.stringify({ text: 'darn it' }), headers: { 'content-type': 'application/json', receipt } }),
      );
      const pub = await native.nextPub(ch);
      assert.deepEqual(pub.data, { text: '**** it', moderated: true });
      h.client.publish({ destination: `/topic/${ch}`, body: JSON.stringify({ text: 'buy spam' }), headers: { 'content-type': 'application/json' } });
      assert.match((await h.errors.take()).headers.message!, /no spam/);
      const bad = await connect('badjson');
      bad.client.publish({ destination: `/topic/${ch}`, body: '{not json', headers: { 'content-type': 'application/json' } });
      assert.match((await bad.errors.take()).headers.message!, /not valid JSON/);
    } finally {
      await native.close();
    }
  });
});
