/**
 * Herald from a page on another origin, in headless Chromium: the SDK over SSE and long-poll
 * (GET streams and `POST /connection/command`, preflight included), the chunked NDJSON stream
 * read with fetch, and the dispatcher work for an origin in `allowedOrigins`, and a page on an
 * origin nobody listed can neither read the HTTP transports nor open a WebSocket. And TLS: Chromium trusting the test certificate's key opens
 * `https://` and `wss://` on Herald's one port, and refuses the same server without that trust.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createDispatchServer, Dispatcher, RedisNodeRegistry, type HeraldServer } from '../../src/index.js';
import { E2E_TEST_TIMEOUT_MS, launchBrowser, WAIT_MS } from '../helpers/browser.js';
import { publish, startServer, waitFor } from '../helpers/server.js';
import { issueCert, makeCa, type TestCa } from '../helpers/tls.js';

const PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>other origin</title></head><body>elsewhere</body></html>';

/** A second origin: an HTTP server with an empty page and the SDK bundle (copied from Herald at start). */
async function otherOrigin(herald: HeraldServer): Promise<{ server: Server; origin: string }> {
  const sdk = Buffer.from(await (await fetch(`${herald.url()}/sdk/herald-client.js`)).arrayBuffer());
  const server = createServer((req, res) => {
    if (req.url === '/sdk.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  // localhost:<port> is another origin than Herald's 127.0.0.1:<port>.
  return { server, origin: `http://localhost:${(server.address() as AddressInfo).port}` };
}

/** In the page: connect the SDK on one transport (or through a dispatcher), subscribe, and resolve with the first publication's data. */
function receiveOne(page: Page, opts: { url?: string; dispatcher?: string; transport: string; channel: string }): Promise<unknown> {
  return page.evaluate(async ({ url, dispatcher, transport, channel }) => {
    const { HeraldClient } = (await import('/sdk.js' as string)) as { HeraldClient: new (o: object) => any };
    const client = new HeraldClient({ url, dispatcher, user: 'carol', transports: [transport], openTimeoutMs: 5_000 });
    const got = new Promise((resolve) => client.subscribe(channel).on('publication', (p: { data: unknown }) => resolve(p.data)));
    await client.connect();
    const data = await got;
    client.disconnect();
    return data;
  }, opts);
}

void describe('Herald from another origin in Chromium', () => {
  let herald: HeraldServer;
  let other: { server: Server; origin: string };
  let browser: Browser;
  let page: Page;

  before(async () => {
    herald = await startServer({ dev: true });
    other = await otherOrigin(herald);
    await herald.close();
    herald = await startServer({ dev: true, allowedOrigins: [other.origin] });
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.goto(other.origin);
  });
  after(async () => {
    await browser?.close();
    await herald?.close();
    await new Promise((r) => other?.server.close(r));
  });

  for (const transport of ['sse', 'long-poll']) {
    void it(`the SDK over ${transport} subscribes, commands and receives from an allowed origin`, { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
      const channel = `xo-${transport}`;
      const received = receiveOne(page, { url: herald.url(), transport, channel });
      await waitFor(() => herald.core.hub.subscriberCount(channel) > 0, WAIT_MS, 'the page subscribed');
      await publish(herald, channel, { hello: transport });
      assert.deepEqual(await received, { hello: transport });
    });
  }

  void it('the chunked NDJSON stream is readable from an allowed origin', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    // The SDK has no stream transport: the page reads /connection/stream with fetch, as an app would.
    const received = page.evaluate(async (url) => {
      const res = await fetch(url);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended: ${text}`);
        text += value;
        const pub = text
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as { type: string; data?: unknown })
          .find((f) => f.type === 'pub');
        if (pub) {
          await reader.cancel();
          return { type: res.headers.get('content-type'), data: pub.data };
        }
      }
    }, `${herald.url()}/connection/stream?channel=xo-stream&user=carol`);
    await waitFor(() => herald.core.hub.subscriberCount('xo-stream') > 0, WAIT_MS, 'the page subscribed');
    await publish(herald, 'xo-stream', { hello: 'stream' });
    assert.deepEqual(await received, { type: 'application/x-ndjson; charset=utf-8', data: { hello: 'stream' } });
  });

  void it('the dispatcher answers an allowed origin, and the SDK follows it to the node', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const prefix = `herald-e2e-xo-${process.pid}:`;
    const registry = new RedisNodeRegistry({ url: 'redis://127.0.0.1:6379', prefix });
    await registry.start();
    await registry.announce({ id: herald.core.nodeId, url: herald.url(), connections: 0, draining: false }, 60_000);
    const dispatcher = createDispatchServer(new Dispatcher({ registry, strategy: 'hash', net: herald.core.net }));
    await new Promise<void>((r) => dispatcher.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(dispatcher.address() as AddressInfo).port}`;
      const received = receiveOne(page, { dispatcher: url, transport: 'long-poll', channel: 'xo-dispatch' });
      await waitFor(() => herald.core.hub.subscriberCount('xo-dispatch') > 0, WAIT_MS, 'the page subscribed');
      await publish(herald, 'xo-dispatch', 'via dispatcher');
      assert.equal(await received, 'via dispatcher');
    } finally {
      await registry.withdraw(herald.core.nodeId);
      await registry.close();
      await new Promise((r) => dispatcher.close(r));
    }
  });

  void it('a page on an origin nobody listed can read no HTTP transport and open no WebSocket', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const closed = await startServer({ dev: true });
    try {
      const outcome = await page.evaluate(async (base) => {
        const poll = await fetch(`${base}/connection/poll?channel=x&user=mallory`).then(
          () => 'read',
          (e: Error) => e.name,
        );
        const stream = await fetch(`${base}/connection/stream?channel=x&user=mallory`).then(
          () => 'read',
          (e: Error) => e.name,
        );
        const command = await fetch(`${base}/connection/command?user=mallory`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: '{"id":1,"cmd":"ping"}',
        }).then(
          () => 'read',
          (e: Error) => e.name,
        );
        const ws = await new Promise((resolve) => {
          const s = new WebSocket(`${base.replace('http', 'ws')}/connection/websocket`);
          s.onopen = () => resolve('open');
          s.onclose = (e) => resolve(`closed ${e.code}`);
        });
        return { poll, stream, command, ws };
      }, closed.url());
      assert.deepEqual(outcome, { poll: 'TypeError', stream: 'TypeError', command: 'TypeError', ws: 'closed 1006' });
      assert.equal(closed.core.hub.connectionCount, 0);
    } finally {
      await closed.close();
    }
  });
});

void describe('TLS in Chromium', () => {
  let ca: TestCa;
  let herald: HeraldServer;
  let spki: string;

  before(async () => {
    ca = makeCa();
    const cert = issueCert(ca);
    spki = cert.spkiSha256;
    herald = await startServer({ dev: true, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
  });
  after(async () => {
    await herald?.close();
    ca?.remove();
  });

  void it(
    'opens https:// and wss:// on the one port when it trusts the certificate key, and refuses it otherwise',
    { timeout: E2E_TEST_TIMEOUT_MS },
    async () => {
      const trusting = await launchBrowser([`--ignore-certificate-errors-spki-list=${spki}`]);
      try {
        const page = await trusting.newPage();
        const res = await page.goto(`${herald.url()}/health`);
        assert.equal(res?.status(), 200);
        assert.match(herald.url(), /^https:/);
        const reply = await page.evaluate(
          async (wss) => {
            return new Promise((resolve, reject) => {
              const ws = new WebSocket(wss);
              ws.onopen = () => ws.send(JSON.stringify({ id: 1, cmd: 'connect', user: 'tess' }));
              ws.onmessage = (e) => {
                resolve(JSON.parse(String(e.data)));
                ws.close();
              };
              ws.onerror = () => reject(new Error('wss failed'));
            });
          },
          `${herald.url().replace('https', 'wss')}/connection/websocket`,
        );
        assert.equal((reply as { result: { user: string } }).result.user, 'tess');
      } finally {
        await trusting.close();
      }
      const plain = await launchBrowser();
      try {
        const page = await plain.newPage();
        await assert.rejects(page.goto(`${herald.url()}/health`), /ERR_CERT_AUTHORITY_INVALID/);
      } finally {
        await plain.close();
      }
    },
  );
});
