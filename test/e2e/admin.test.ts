/**
 * The admin dashboard in headless Chromium: live connection counts by transport, message rates
 * and top channels while SDK clients are connected; an API key is required when configured.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { HeraldClient } from '../../clients/js/src/index.js';
import type { HeraldServer } from '../../src/index.js';
import { E2E_TEST_TIMEOUT_MS, launchBrowser, SCREENSHOTS, WAIT_MS } from '../helpers/browser.js';
import { sdkClient } from '../helpers/sdk.js';
import { publish, startServer, waitFor } from '../helpers/server.js';

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
      await page.screenshot({ path: fileURLToPath(new URL('admin.png', SCREENSHOTS)) });
    } finally {
      clearInterval(timer);
      await page.close();
    }
  });

  void it('asks for the API key when one is configured and the request is not authorized', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const key = 'e2e-admin-key-0123456789';
    const locked = await startServer({ apiKey: key });
    try {
      const page = await browser.newPage();
      const res = await page.goto(`${locked.url()}/admin`);
      // Loopback still needs the key once one is configured.
      assert.equal(res?.status(), 401);
      await page.fill('#k', key);
      await Promise.all([page.waitForLoadState('load'), page.click('button')]);
      await page.waitForFunction(() => Number(document.body.dataset.ticks ?? 0) >= 1, undefined, { timeout: WAIT_MS });
      assert.equal(await page.textContent('#status'), 'live');
      await page.close();
    } finally {
      await locked.close();
    }
  });
});
