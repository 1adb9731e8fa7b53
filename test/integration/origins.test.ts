/**
 * The Origin policy, replaying the review's attacks with real clients: a page on another site
 * opening WebSockets (native, STOMP, Nchan) with the visitor's cookies, reading Nchan answers
 * with credentials, and having its cookies passed to the authorize hook; and the CORS answers of
 * the native HTTP transports (preflight included) for allowedOrigins.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import WebSocket from 'ws';
import { startServer, wsUrl } from '../helpers/server.js';

const EVIL = 'http://evil.example';
const APP = 'https://app.example';

/** Open a WebSocket with an Origin; resolves 'open' or the HTTP status of the refusal. */
function upgrade(url: string, origin: string | undefined, headers: Record<string, string> = {}): Promise<string | number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { ...(origin ? { origin } : {}), headers });
    ws.once('open', () => {
      ws.close();
      resolve('open');
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
    });
    ws.once('error', () => undefined);
  });
}

describe('Origin policy', () => {
  test('WebSocket upgrades from a foreign origin are refused on the native, STOMP and Nchan endpoints', async () => {
    const server = await startServer({ dev: true, allowedOrigins: [APP] });
    try {
      const base = server.url().replace('http', 'ws');
      for (const url of [wsUrl(server), `${base}/stomp`, `${base}/sub/room`]) {
        assert.equal(await upgrade(url, EVIL, { cookie: 'session=victim' }), 403, url);
        assert.equal(await upgrade(url, APP), 'open', url);
        assert.equal(await upgrade(url, undefined), 'open', `${url} without Origin (not a browser)`);
        assert.equal(await upgrade(url, server.url()), 'open', `${url} from the node's own origin`);
      }
    } finally {
      await server.close();
    }
  });

  test('native HTTP transports answer CORS for allowed origins (preflight included) and refuse others before running', async () => {
    const server = await startServer({ dev: true, allowedOrigins: [APP], channels: { allowPublish: true } });
    try {
      const pre = await fetch(`${server.url()}/connection/command`, {
        method: 'OPTIONS',
        headers: { origin: APP, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' },
      });
      assert.equal(pre.status, 204);
      assert.equal(pre.headers.get('access-control-allow-origin'), APP);
      assert.match(pre.headers.get('access-control-allow-headers') ?? '', /authorization/);
      assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
      assert.equal(pre.headers.get('access-control-allow-credentials'), null);
      const ok = await fetch(`${server.url()}/connection/command?user=alice`, {
        method: 'POST',
        headers: { origin: APP, 'content-type': 'application/json' },
        body: JSON.stringify({ id: 1, cmd: 'publish', channel: 'xo', data: 1 }),
      });
      assert.equal(ok.status, 200);
      assert.equal(ok.headers.get('access-control-allow-origin'), APP);
      const poll = await fetch(`${server.url()}/connection/poll?channel=xo&last=1`, { headers: { origin: APP } });
      assert.equal(poll.status, 200);
      assert.equal(poll.headers.get('access-control-allow-origin'), APP);
      // A foreign page's command is not run at all.
      const evil = await fetch(`${server.url()}/connection/command?user=mallory`, {
        method: 'POST',
        headers: { origin: EVIL, 'content-type': 'application/json' },
        body: JSON.stringify({ id: 1, cmd: 'publish', channel: 'xo', data: 2 }),
      });
      assert.equal(evil.status, 403);
      assert.equal(((await evil.json()) as { code: string }).code, 'HERALD_ERR_FORBIDDEN');
      assert.equal((await fetch(`${server.url()}/connection/sse?channel=xo`, { headers: { origin: EVIL } })).status, 403);
      const info = await server.core.channelInfo('xo');
      assert.equal(info.position.offset, 1, 'only the allowed publish happened');
    } finally {
      await server.close();
    }
  });

  test('Nchan echoes a foreign Origin without credentials and keeps its cookies from the authorize hook', async () => {
    const seen: IncomingMessage['headers'][] = [];
    const hook: Server = createServer((req, res) => {
      seen.push(req.headers);
      res.writeHead(200).end();
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const authorizeUrl = `http://127.0.0.1:${(hook.address() as AddressInfo).port}/auth`;
    const server = await startServer({ allowedOrigins: [APP], nchan: { routes: [{ path: '/sub/', role: 'subscriber', authorizeUrl }] } });
    try {
      const get = (origin: string): Promise<Response> =>
        fetch(`${server.url()}/sub/room`, { method: 'OPTIONS', headers: { origin, cookie: 'session=victim' } });
      const evil = await get(EVIL);
      assert.equal(evil.headers.get('access-control-allow-origin'), EVIL);
      assert.equal(evil.headers.get('access-control-allow-credentials'), null, 'no credentials for a foreign origin');
      assert.equal((await get(APP)).headers.get('access-control-allow-credentials'), 'true');
      const stream = (origin: string): Promise<void> =>
        fetch(`${server.url()}/sub/room`, {
          headers: { origin, cookie: 'session=victim', accept: 'text/event-stream' },
          signal: AbortSignal.timeout(300),
        }).then(
          (r) => void r.body?.cancel(),
          () => undefined,
        );
      await stream(EVIL);
      await stream(APP);
      assert.equal(seen.length, 2);
      assert.equal(seen[0]!.cookie, undefined, 'the foreign page cookie never reaches the hook');
      assert.equal(seen[1]!.cookie, 'session=victim');
    } finally {
      await server.close();
      await new Promise((r) => hook.close(r));
    }
  });
});
