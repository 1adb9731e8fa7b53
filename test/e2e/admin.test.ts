/**
 * The admin dashboard in headless Chromium: live connection counts by transport, message rates
 * and top channels while SDK clients are connected; the cluster's nodes (two nodes over the
 * local Redis); an API key is required when configured.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { HeraldClient } from '../../clients/js/src/index.js';
import type { HeraldServer } from '../../src/index.js';
import { cspViolations, E2E_TEST_TIMEOUT_MS, launchBrowser, shot, WAIT_MS } from '../helpers/browser.js';
import { sdkClient } from '../helpers/sdk.js';
import { publish, startServer, waitFor } from '../helpers/server.js';
import { deleteKeys, SHARED_REDIS_URL, testPrefix } from '../cluster/redis.js';

void describe('admin dashboard in Chromium', () => {
  let server: HeraldServer;
  let browser: Browser;
  const clients: HeraldClient[] = [];

  before(async () => {
    server = await startServer({ dev: true, web: { chat: false } });
    browser = await launchBrowser();
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await browser?.close();
    await server?.close();
  });

  void it('shows live connections by transport, message rates and top channels', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    for (const [i, t] of (['websocket', 'websocket', 'sse', 'long-poll'] as const).entries()) {
      const c = sdkClient(server, t, { user: `viewer${i}` });
      clients.push(c);
      c.subscribe('news');
      if (i % 2 === 0) c.subscribe('sport');
      await c.connect();
    }
    await waitFor(() => server.core.hub.subscriberCount('news') >= 3, 5_000, 'subscribers');
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const violations = cspViolations(page);
    await page.goto(`${server.url()}/admin`);
    const timer = setInterval(() => void publish(server, 'news', { at: Date.now() }).catch(() => undefined), 50);
    try {
      await page.waitForFunction(() => Number(document.body.dataset.ticks ?? 0) >= 4, undefined, { timeout: WAIT_MS });
      await page.locator('#by-transport li[data-transport="websocket"]').waitFor();
      await page.locator('#by-transport li[data-transport="sse"]').waitFor();
      assert.ok(Number(await page.textContent('#connections')) >= 3);
      await page.waitForFunction(() => Number(document.getElementById('rate-published')?.textContent) > 0, undefined, { timeout: WAIT_MS });
      assert.notEqual(await page.textContent('#latency'), '–');
      const top = await page.locator('#top-channels tr td:first-child').allTextContents();
      assert.equal(top[0], 'news');
      await page.waitForTimeout(2_000);
      await page.screenshot({ path: shot('admin.png') });
      assert.deepEqual(violations, [], 'the dashboard works under its Content-Security-Policy');
    } finally {
      clearInterval(timer);
      await page.close();
    }
  });

  void it('asks for the API key when one is configured, says when the key is wrong, then lets the right one in', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const key = 'e2e-admin-key-0123456789';
    const locked = await startServer({ apiKey: key });
    try {
      const page = await browser.newPage();
      const violations = cspViolations(page);
      const res = await page.goto(`${locked.url()}/admin`);
      // Loopback still needs the key once one is configured.
      assert.equal(res?.status(), 401);
      assert.equal(await page.textContent('#login-error'), '', 'no error before a key was tried');
      await page.fill('#k', 'not-the-key');
      await Promise.all([page.waitForLoadState('load'), page.click('button')]);
      await page.locator('#login-error', { hasText: 'Wrong API key' }).waitFor({ timeout: WAIT_MS });
      await page.screenshot({ path: shot('admin-wrong-key.png') });
      await page.fill('#k', key);
      await Promise.all([page.waitForLoadState('load'), page.click('button')]);
      await page.waitForFunction(() => Number(document.body.dataset.ticks ?? 0) >= 1, undefined, { timeout: WAIT_MS });
      assert.equal(await page.textContent('#status'), 'live');
      // Signed in by an HttpOnly session cookie: no script on the page can read it (or the key).
      assert.equal(await page.evaluate(() => document.cookie), '');
      const cookies = await page.context().cookies();
      const session = cookies.find((c) => c.name === 'herald_admin');
      assert.ok(session, 'the session cookie is set');
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, 'Strict');
      assert.ok(!cookies.some((c) => c.value.includes(key)), 'the key is in no cookie');
      assert.deepEqual(violations, [], 'sign-in and dashboard work under the Content-Security-Policy');
      await page.close();
    } finally {
      await locked.close();
    }
  });

  void it('counts IM traffic: messages sent through the IM raise the IM rate', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'herald-e2e-admin-'));
    const im = await startServer({ dev: true, dataDir: dir, web: { chat: false } });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    let n = 0;
    const sendOne = (): Promise<unknown> =>
      fetch(`${im.url()}/api/im/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ from: 'ops', to: 'oncall', clientId: `im-${++n}`, data: { text: `alert ${n}` } }),
      });
    try {
      await fetch(`${im.url()}/api/im/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ users: [{ id: 'ops' }, { id: 'oncall' }] }),
      });
      await page.goto(`${im.url()}/admin`);
      await page.waitForFunction(() => Number(document.body.dataset.ticks ?? 0) >= 2, undefined, { timeout: WAIT_MS });
      assert.equal(await page.textContent('#im-total'), '0');
      const timer = setInterval(() => void sendOne().catch(() => undefined), 100);
      try {
        await page.waitForFunction(() => Number(document.getElementById('rate-im')?.textContent) > 0, undefined, { timeout: WAIT_MS });
      } finally {
        clearInterval(timer);
      }
      assert.ok(Number(await page.textContent('#im-total')) > 0);
      assert.ok(Number(await page.textContent('#rate-published')) > 0, 'IM traffic counts in the publication rate too');
      await page.screenshot({ path: shot('admin-im.png') });
    } finally {
      await page.close();
      await im.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  void it(
    'lists the cluster in the nodes table: this node marked, the other node with its connections, then draining',
    { timeout: E2E_TEST_TIMEOUT_MS },
    async () => {
      // Two nodes sharing the local Redis (a key prefix of their own), heartbeating every 200 ms.
      const prefix = testPrefix('e2e-admin');
      const cluster = { redis: { url: SHARED_REDIS_URL, prefix }, cluster: { heartbeatMs: 200, drainWindowMs: 100 }, web: { chat: false } };
      const a = await startServer({ dev: true, ...cluster });
      const b = await startServer({ dev: true, ...cluster });
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      const onB: HeraldClient[] = [];
      try {
        for (let i = 0; i < 2; i++) {
          const c = sdkClient(b, 'websocket', { user: `remote${i}` });
          onB.push(c);
          await c.connect();
        }
        await page.goto(`${a.url()}/admin`);
        const rowA = page.locator(`#nodes tr[data-node="${a.core.nodeId}"]`);
        const rowB = page.locator(`#nodes tr[data-node="${b.core.nodeId}"]`);
        await rowA.waitFor({ timeout: WAIT_MS });
        await rowB.waitFor({ timeout: WAIT_MS });
        assert.equal(await page.locator('#nodes tr').count(), 2);
        assert.match((await rowA.locator('td').first().textContent()) ?? '', /\(this node\)$/);
        assert.equal(await rowA.getAttribute('class'), 'self');
        const cells = async (row: typeof rowA): Promise<string[]> => row.locator('td').allTextContents();
        const b0 = await cells(rowB);
        assert.equal(b0[1], b.url());
        assert.match(b0[3]!, /^\d+\.\d+\.\d+/, 'version');
        assert.match(b0[4]!, /^\d+h \d+m \d+s$/, 'uptime');
        await page.waitForFunction((id) => document.querySelector(`#nodes tr[data-node="${id}"] td:nth-child(6)`)?.textContent === '2', b.core.nodeId, {
          timeout: WAIT_MS,
        });
        // The summary cards add the nodes up: B's two connections count on A's dashboard.
        await page.waitForFunction(() => document.getElementById('connections')?.textContent === '2', undefined, { timeout: WAIT_MS });
        assert.match((await page.textContent('#nodes-summary')) ?? '', /^2 nodes · 2 connections/);
        await page.screenshot({ path: shot('admin-nodes.png') });
        // Draining B shows in its row once its next heartbeat lands.
        const drained = await fetch(`${b.url()}/api/drain`, { method: 'POST' });
        assert.equal(drained.status, 200);
        await drained.arrayBuffer();
        await page.waitForFunction((id) => document.querySelector(`#nodes tr[data-node="${id}"]`)?.classList.contains('draining'), b.core.nodeId, {
          timeout: WAIT_MS,
        });
        assert.equal((await cells(rowB)).at(-1), 'draining');
      } finally {
        for (const c of onB) c.disconnect();
        await page.close();
        await Promise.all([a.close(), b.close()]);
        await deleteKeys(SHARED_REDIS_URL, prefix);
      }
    },
  );

  void it("serves the favicon and the sign-in page's files without the key", { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const locked = await startServer({ apiKey: 'e2e-admin-key-0123456789' });
    try {
      for (const [path, type] of [
        ['/favicon.svg', 'image/svg+xml'],
        ['/admin/login.js', 'text/javascript; charset=utf-8'],
        ['/admin/login.css', 'text/css; charset=utf-8'],
      ]) {
        const r = await fetch(`${locked.url()}${path}`);
        assert.equal(r.status, 200, path);
        assert.equal(r.headers.get('content-type'), type);
        await r.arrayBuffer();
      }
      assert.equal((await fetch(`${locked.url()}/admin/admin.js`)).status, 401, 'the dashboard itself still needs the key');
    } finally {
      await locked.close();
    }
  });
});
