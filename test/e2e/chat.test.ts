/**
 * The web chat in headless Chromium against a real server: two users chat with presence,
 * receipts and typing; one goes offline, the other sends, the first comes back and sees
 * everything in order; a server restart shows the reconnecting banner and the chat resumes;
 * a page without WebSocket chats over the SSE fallback. Screenshots go to docs/screenshots/.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { HeraldServer } from '../../src/index.js';
import { E2E_TEST_TIMEOUT_MS, launchBrowser, SCREENSHOTS, WAIT_MS } from '../helpers/browser.js';
import { startServer } from '../helpers/server.js';

const shot = (name: string): string => fileURLToPath(new URL(name, SCREENSHOTS));

void describe('web chat in Chromium', () => {
  let server: HeraldServer;
  let browser: Browser;
  let dir: string;
  const config = (): Record<string, unknown> => ({ dev: true, dataDir: dir, im: { presenceGraceMs: 300, redeliveryTimeoutMs: 500 } });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-e2e-'));
    server = await startServer(config());
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function signIn(user: string, opts: { transport?: string; noWebSocket?: boolean; swallowWebSocket?: boolean } = {}): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
    if (opts.noWebSocket) await context.addInitScript(() => delete (window as { WebSocket?: unknown }).WebSocket);
    // A middlebox that accepts the WebSocket and never passes anything on.
    if (opts.swallowWebSocket) await context.routeWebSocket(/\/connection\/websocket/, (ws) => ws.onMessage(() => undefined));
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`[${user}] page error:`, err));
    const q = new URLSearchParams({ user, ...(opts.transport ? { transport: opts.transport } : {}) });
    await page.goto(`${server.url()}/?${q}`);
    await page.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
    return page;
  }

  const texts = (page: Page): Promise<string[]> => page.locator('#messages .msg .text').allTextContents();

  async function send(page: Page, text: string): Promise<void> {
    await page.fill('#composer-text', text);
    await page.click('#send');
    await page.locator('#messages .msg.mine .text', { hasText: text }).waitFor();
  }

  void it('two users chat; the one who was offline sees every message in order when back', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const alice = await signIn('alice');
    let bob = await signIn('bob');
    assert.equal(await alice.getAttribute('body', 'data-transport'), 'websocket');

    // Contacts with presence dots.
    await alice.fill('#add-contact-name', 'bob');
    await alice.press('#add-contact-name', 'Enter');
    await alice.locator('#contacts .contact[data-user="bob"][data-state="online"]').waitFor();
    await bob.fill('#add-contact-name', 'alice');
    await bob.press('#add-contact-name', 'Enter');
    await bob.locator('#contacts .contact[data-user="alice"]').waitFor();

    // Alice writes; Bob sees an unread conversation, opens it, Alice gets the read receipt.
    await alice.click('#contacts .contact[data-user="bob"]');
    await send(alice, 'hi bob');
    await bob.locator('#conversations .conv-item .unread', { hasText: '1' }).waitFor();
    await bob.click('#conversations .conv-item');
    await bob.locator('#messages .msg .text', { hasText: 'hi bob' }).waitFor();
    await alice.locator('#messages .msg.mine .meta[data-status="read"]').waitFor();

    // Typing indicator.
    await bob.type('#composer-text', 'hel');
    await alice.locator('#typing', { hasText: 'bob is typing' }).waitFor();
    await bob.fill('#composer-text', '');
    await send(bob, 'hello alice');
    await alice.locator('#messages .msg .text', { hasText: 'hello alice' }).waitFor();

    // Bob goes offline; Alice sees it and sends three messages.
    await bob.context().close();
    await alice.locator('#contacts .contact[data-user="bob"][data-state="offline"]').waitFor({ timeout: WAIT_MS });
    for (const t of ['while you were out 1', 'while you were out 2', 'while you were out 3']) await send(alice, t);
    await alice.screenshot({ path: shot('chat-alice.png') });

    // Bob comes back: three unread, and everything in order.
    bob = await signIn('bob');
    await bob.locator('#conversations .conv-item .unread', { hasText: '3' }).waitFor();
    await bob.screenshot({ path: shot('chat-bob-unread.png') });
    await bob.click('#conversations .conv-item');
    await bob.locator('#messages .msg .text', { hasText: 'while you were out 3' }).waitFor();
    assert.deepEqual(await texts(bob), ['hi bob', 'hello alice', 'while you were out 1', 'while you were out 2', 'while you were out 3']);
    await alice.locator('#contacts .contact[data-user="bob"][data-state="online"]').waitFor();
    await bob.screenshot({ path: shot('chat-bob.png') });
    await alice.context().close();
    await bob.context().close();
  });

  void it('shows the reconnecting banner while the server restarts, then keeps chatting', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const erin = await signIn('erin');
    const frank = await signIn('frank');
    await erin.fill('#add-contact-name', 'frank');
    await erin.press('#add-contact-name', 'Enter');
    await erin.click('#contacts .contact[data-user="frank"]');
    await send(erin, 'before restart');
    const port = server.address().port;
    await server.close();
    await erin.locator('#banner', { hasText: 'Reconnecting' }).waitFor({ state: 'visible', timeout: WAIT_MS });
    await erin.screenshot({ path: shot('chat-reconnecting.png') });
    server = await startServer({ ...config(), port });
    await erin.locator('#banner').waitFor({ state: 'hidden', timeout: WAIT_MS });
    await frank.locator('#banner').waitFor({ state: 'hidden', timeout: WAIT_MS });
    await send(erin, 'after restart');
    await frank.click('#conversations .conv-item');
    await frank.locator('#messages .msg .text', { hasText: 'after restart' }).waitFor();
    assert.deepEqual(await texts(frank), ['before restart', 'after restart']);
    await erin.context().close();
    await frank.context().close();
  });

  void it('chats over the SSE fallback when the page has no WebSocket', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const carol = await signIn('carol', { noWebSocket: true });
    const dave = await signIn('dave');
    assert.equal(await carol.getAttribute('body', 'data-transport'), 'sse');
    assert.equal(await carol.textContent('#transport'), 'sse');
    await carol.fill('#add-contact-name', 'dave');
    await carol.press('#add-contact-name', 'Enter');
    await carol.click('#contacts .contact[data-user="dave"]');
    await send(carol, 'from a browser without WebSocket');
    await dave.locator('#conversations .conv-item .unread').waitFor();
    await dave.click('#conversations .conv-item');
    await send(dave, 'received over WebSocket, answered');
    await carol.locator('#messages .msg .text', { hasText: 'answered' }).waitFor();
    assert.deepEqual(await texts(carol), ['from a browser without WebSocket', 'received over WebSocket, answered']);
    await carol.screenshot({ path: shot('chat-sse-fallback.png') });
    await carol.context().close();
    await dave.context().close();
  });

  void it('runs a group conversation: create, unread for every member, sender names', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const ivy = await signIn('ivy');
    const jack = await signIn('jack');
    const kate = await signIn('kate');
    const answers = ['crew', 'jack, kate'];
    ivy.on('dialog', (d) => void d.accept(answers.shift()));
    await ivy.click('#new-group');
    await ivy.locator('#conv-title', { hasText: 'crew' }).waitFor();
    await ivy.locator('#messages .msg.system', { hasText: 'created' }).waitFor();
    await send(ivy, 'hello crew');
    for (const p of [jack, kate]) {
      await p.locator('#conversations .conv-item .unread', { hasText: '1' }).waitFor();
      await p.click('#conversations .conv-item');
      await p.locator('#messages .msg .text', { hasText: 'hello crew' }).waitFor();
    }
    await send(kate, 'hi from kate');
    await jack.locator('#messages .msg .text', { hasText: 'hi from kate' }).waitFor();
    assert.deepEqual(await jack.locator('#messages .msg .from').allTextContents(), ['ivy', 'kate']);
    assert.deepEqual(await texts(jack), ['hello crew', 'hi from kate']);
    await jack.screenshot({ path: shot('chat-group.png') });
    for (const p of [ivy, jack, kate]) await p.context().close();
  });

  void it('falls back to SSE when the WebSocket opens but nothing ever answers', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const liz = await signIn('liz', { swallowWebSocket: true });
    const max = await signIn('max');
    assert.equal(await liz.getAttribute('body', 'data-transport'), 'sse');
    await max.fill('#add-contact-name', 'liz');
    await max.press('#add-contact-name', 'Enter');
    await max.click('#contacts .contact[data-user="liz"]');
    await send(max, 'can you hear me?');
    await liz.locator('#conversations .conv-item .unread').waitFor();
    await liz.click('#conversations .conv-item');
    await send(liz, 'yes, over SSE');
    await max.locator('#messages .msg .text', { hasText: 'yes, over SSE' }).waitFor();
    await liz.context().close();
    await max.context().close();
  });

  void it('chats over long-poll when forced', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const gina = await signIn('gina', { transport: 'long-poll' });
    const hank = await signIn('hank');
    assert.equal(await gina.getAttribute('body', 'data-transport'), 'long-poll');
    await hank.fill('#add-contact-name', 'gina');
    await hank.press('#add-contact-name', 'Enter');
    await hank.click('#contacts .contact[data-user="gina"]');
    await send(hank, 'to a long-poll page');
    await gina.locator('#conversations .conv-item .unread').waitFor();
    await gina.click('#conversations .conv-item');
    await send(gina, 'from a long-poll page');
    await hank.locator('#messages .msg .text', { hasText: 'from a long-poll page' }).waitFor();
    await gina.context().close();
    await hank.context().close();
  });
});
