/**
 * The web pages without a browser: which pages each configuration serves, the admin page's key
 * check (header, signed-in session cookie, loopback), the security headers of every page, the
 * SDK bundle, and that paths cannot leave the web root.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pageHeaders } from '../../src/api/web.js';
import { startServer } from '../helpers/server.js';

const KEY = 'web-test-key-0123456789';

/** Post the admin sign-in form. */
function signIn(base: string, key: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${base}/admin/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams({ key }).toString(),
    redirect: 'manual',
  });
}

async function get(base: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(base + path, { headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

void describe('web pages', () => {
  void it('serves the chat, its assets and the SDK bundle in development mode', async () => {
    const server = await startServer({ dev: true });
    try {
      const page = await get(server.url(), '/');
      assert.equal(page.status, 200);
      assert.match(page.type, /text\/html/);
      assert.match(page.body, /Herald chat/);
      assert.equal((await get(server.url(), '/chat/app.js')).status, 200);
      const sdk = await get(server.url(), '/sdk/herald-client.js');
      assert.equal(sdk.status, 200);
      assert.match(sdk.type, /javascript/);
      assert.match(sdk.body, /HeraldClient/);
      assert.match(sdk.body, /ImClient/);
      assert.equal((await get(server.url(), '/chat/missing.js')).status, 404);
      assert.equal((await get(server.url(), '/chat/%2e%2e/%2e%2e/package.json')).status, 404);
      assert.equal((await get(server.url(), '/chat/..%2f..%2fpackage.json')).status, 404);
    } finally {
      await server.close();
    }
  });

  void it('keeps the chat off outside development mode unless web.chat is set', async () => {
    const off = await startServer({});
    const on = await startServer({ web: { chat: true } });
    const devOff = await startServer({ dev: true, web: { chat: false, admin: false } });
    try {
      assert.equal((await get(off.url(), '/')).status, 404);
      assert.equal((await get(on.url(), '/')).status, 200);
      assert.equal((await get(devOff.url(), '/')).status, 404);
      assert.equal((await get(devOff.url(), '/admin')).status, 404);
      assert.equal((await get(devOff.url(), '/sdk/herald-client.js')).status, 404);
    } finally {
      await Promise.all([off.close(), on.close(), devOff.close()]);
    }
  });

  void it('serves the admin page to loopback without a key, and asks for the key once one is set', async () => {
    const open = await startServer({});
    const locked = await startServer({ apiKey: KEY });
    try {
      const a = await get(open.url(), '/admin');
      assert.equal(a.status, 200);
      assert.match(a.body, /Herald admin/);
      assert.equal((await get(open.url(), '/admin/admin.js')).status, 200);
      const login = await get(locked.url(), '/admin');
      assert.equal(login.status, 401);
      assert.match(login.body, /API key/);
      assert.equal((await get(locked.url(), '/admin/admin.js')).status, 401);
      assert.equal((await get(locked.url(), '/admin', { authorization: `apikey ${KEY}` })).status, 200);
      // The key itself as a cookie (what the page used to keep, readable by scripts) opens nothing.
      assert.equal((await get(locked.url(), '/admin', { cookie: `herald_key=${encodeURIComponent(KEY)}` })).status, 401);
      const wrong = await signIn(locked.url(), 'wrong-key-0123456789abc');
      assert.equal(wrong.status, 401);
      assert.equal(wrong.headers.get('set-cookie'), null);
      assert.match(await wrong.text(), /Wrong API key/);
      assert.doesNotMatch(login.body, /Wrong API key/, 'no complaint before a key was tried');
      assert.doesNotMatch(login.body, /<script>/, "no inline script (a script-src 'self' policy would block it)");
    } finally {
      await Promise.all([open.close(), locked.close()]);
    }
  });

  void it('signs in with a form POST: an HttpOnly, SameSite=Strict session cookie that opens the page and the read-only API, never the writes', async () => {
    const locked = await startServer({ apiKey: KEY, trustLoopback: false });
    try {
      const ok = await signIn(locked.url(), KEY);
      assert.equal(ok.status, 303);
      assert.equal(ok.headers.get('location'), '/admin');
      const setCookie = ok.headers.get('set-cookie')!;
      assert.match(setCookie, /^herald_admin=\d+\.[\w-]+; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
      assert.doesNotMatch(setCookie, /Secure/, 'plain HTTP: no Secure flag');
      assert.ok(!setCookie.includes(KEY), 'the cookie is not the key');
      const cookie = setCookie.split(';')[0]!;
      assert.equal((await get(locked.url(), '/admin', { cookie })).status, 200);
      assert.equal((await get(locked.url(), '/api/stats', { cookie })).status, 200);
      assert.equal((await get(locked.url(), '/metrics', { cookie })).status, 200);
      const write = await fetch(`${locked.url()}/api/publish`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json' },
        body: '{"channel":"x","data":1}',
      });
      assert.equal(write.status, 401, 'the session cookie never authorizes a write');
      // A forged or expired session opens nothing, and is cleared.
      const [value] = cookie.split('=').slice(1);
      const forged = `herald_admin=${Number(value!.split('.')[0]) + 1}.${value!.split('.')[1]}`;
      const refused = await fetch(`${locked.url()}/admin`, { headers: { cookie: forged } });
      assert.equal(refused.status, 401);
      assert.match(refused.headers.get('set-cookie') ?? '', /^herald_admin=; .*Max-Age=0/);
      assert.equal((await get(locked.url(), '/api/stats', { cookie: 'herald_admin=1.x' })).status, 401);
      // Sign-in from another site is refused.
      assert.equal((await signIn(locked.url(), KEY, { origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' })).status, 403);
      assert.equal((await fetch(`${locked.url()}/admin/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })).status, 415);
    } finally {
      await locked.close();
    }
  });

  void it('sends a strict Content-Security-Policy, a same-origin Referrer-Policy and nosniff with every page', async () => {
    const server = await startServer({ dev: true, apiKey: KEY, devAllowUnsafe: true });
    try {
      const host = new URL(server.url()).host;
      for (const path of ['/', '/chat/app.js', '/favicon.svg', '/admin', '/admin/login.js', '/sdk/herald-client.js']) {
        const res = await fetch(server.url() + path);
        await res.arrayBuffer();
        assert.ok(res.status === 200 || res.status === 401, `${path}: ${res.status}`);
        const csp = res.headers.get('content-security-policy') ?? '';
        for (const directive of [
          "default-src 'self'",
          "script-src 'self'",
          `connect-src 'self' ws://${host} wss://${host}`,
          "frame-ancestors 'none'",
          "base-uri 'none'",
          "form-action 'self'",
          "object-src 'none'",
        ])
          assert.ok(csp.includes(directive), `${path}: ${directive} missing from ${csp}`);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
        assert.equal(res.headers.get('referrer-policy'), 'same-origin', path);
        assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
        assert.equal(res.headers.get('x-frame-options'), 'DENY', path);
      }
      // A Host header unfit for the policy (fetch cannot send one) leaves connect-src at 'self'.
      assert.match(pageHeaders('a b;script-src *')['content-security-policy']!, /connect-src 'self'; object-src/);
      assert.match(pageHeaders('[::1]:8080')['content-security-policy']!, /connect-src 'self' ws:\/\/\[::1\]:8080 wss:\/\/\[::1\]:8080;/);
    } finally {
      await server.close();
    }
  });
});
