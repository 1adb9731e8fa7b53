/**
 * Development mode is announced on the pages, not only in the server log (issue 12, item 12):
 * the chat and the admin dashboard show their development-mode bar when the node runs in
 * development mode, and show none when it does not.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { HeraldServer } from '../../src/index.js';
import { E2E_TEST_TIMEOUT_MS, launchBrowser, WAIT_MS } from '../helpers/browser.js';
import { startServer } from '../helpers/server.js';

/** Open `url` and wait until the page has asked the node about its mode (the admin page's first stats tick, the chat's /health). */
async function opened(page: Page, url: string, asked: string): Promise<void> {
  const answered = page.waitForResponse((res) => new URL(res.url()).pathname === asked, { timeout: WAIT_MS });
  await page.goto(url);
  await answered;
  // The page applies the answer in the same task that reads it; one more turn of its loop.
  await page.evaluate(() => new Promise((r) => setTimeout(r, 50)));
}

void describe('development mode on the pages, in Chromium', () => {
  let dev: HeraldServer;
  let prod: HeraldServer;
  let browser: Browser;

  before(async () => {
    dev = await startServer({ dev: true });
    // Outside development mode the chat is on by option; the admin page trusts loopback (test default).
    prod = await startServer({ web: { chat: true, admin: true } });
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await dev?.close();
    await prod?.close();
  });

  for (const [page, path, asked] of [
    ['chat', '/', '/health'],
    ['admin dashboard', '/admin', '/api/stats'],
  ] as const) {
    void it(`the ${page} shows the development-mode bar in development mode and none otherwise`, { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
      const p = await browser.newPage();
      try {
        await opened(p, dev.url() + path, asked);
        await p.locator('#dev-mode').waitFor({ state: 'visible', timeout: WAIT_MS });
        assert.match((await p.textContent('#dev-mode')) ?? '', /Development mode/);
        await opened(p, prod.url() + path, asked);
        assert.equal(await p.isVisible('#dev-mode'), false);
      } finally {
        await p.close();
      }
    });
  }
});
