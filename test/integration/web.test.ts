/**
 * The web pages without a browser: which pages each configuration serves, the admin page's key
 * check (header, cookie, loopback), the SDK bundle, and that paths cannot leave the web root.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { startServer } from '../helpers/server.js';

const KEY = 'web-test-key-0123456789';

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
      assert.equal((await get(locked.url(), '/admin', { cookie: `herald_key=${encodeURIComponent(KEY)}` })).status, 200);
      const wrong = await get(locked.url(), '/admin', { cookie: 'herald_key=wrong-key-0123456789abc' });
      assert.equal(wrong.status, 401);
      assert.match(wrong.body, /Wrong API key/);
      assert.doesNotMatch(login.body, /Wrong API key/, 'no complaint before a key was tried');
      assert.doesNotMatch(login.body, /<script>/, "no inline script (a script-src 'self' policy would block it)");
    } finally {
      await Promise.all([open.close(), locked.close()]);
    }
  });
});
