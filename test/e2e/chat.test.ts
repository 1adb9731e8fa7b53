/**
 * The web chat in headless Chromium against a real server: two users chat with presence,
 * receipts and typing; one goes offline, the other sends, the first comes back and sees
 * everything in order; a server restart shows the reconnecting banner and the chat resumes;
 * a page without WebSocket chats over the SSE fallback; a phone-width page; sign-out; edit and
 * recall; older history by pages; the group dialog; users who never signed in; the favicon.
 * Screenshots: see SCREENSHOTS in test/helpers/browser.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { HeraldServer } from '../../src/index.js';
import { E2E_TEST_TIMEOUT_MS, launchBrowser, shot, WAIT_MS } from '../helpers/browser.js';
import { startServer } from '../helpers/server.js';

void describe('web chat in Chromium', () => {
  let server: HeraldServer;
  let browser: Browser;
  const cspFailures: string[] = [];
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
    assert.deepEqual(cspFailures, [], 'no Content-Security-Policy violation on the chat page');
  });

  async function signIn(
    user: string,
    opts: { transport?: string; noWebSocket?: boolean; swallowWebSocket?: boolean; width?: number; height?: number } = {},
  ): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: opts.width ?? 1100, height: opts.height ?? 700 } });
    if (opts.noWebSocket) await context.addInitScript(() => delete (window as { WebSocket?: unknown }).WebSocket);
    // A middlebox that accepts the WebSocket and never passes anything on.
    if (opts.swallowWebSocket) await context.routeWebSocket(/\/connection\/websocket/, (ws) => ws.onMessage(() => undefined));
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error(`[${user}] page error:`, err));
    page.on('console', (msg) => {
      // The chat must work under its Content-Security-Policy: any violation fails the test run.
      if (/Content Security Policy/i.test(msg.text())) cspFailures.push(`[${user}] ${msg.text()}`);
    });
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

    // Contacts with presence dots: shared once both have added each other.
    await alice.fill('#add-contact-name', 'bob');
    await alice.press('#add-contact-name', 'Enter');
    await alice.locator('#contacts .contact[data-user="bob"][data-state="offline"]').waitFor();
    await bob.fill('#add-contact-name', 'alice');
    await bob.press('#add-contact-name', 'Enter');
    await bob.locator('#contacts .contact[data-user="alice"][data-state="online"]').waitFor();
    await alice.locator('#contacts .contact[data-user="bob"][data-state="online"]').waitFor();

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
    await bob.locator('#messages[data-loaded="true"] .msg .text', { hasText: 'while you were out 3' }).waitFor();
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

  void it('runs a group conversation: create, invitations joined, unread for every member, sender names', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const ivy = await signIn('ivy');
    const jack = await signIn('jack');
    const kate = await signIn('kate');
    await ivy.click('#new-group');
    await ivy.locator('#group-dialog[open]').waitFor();
    await ivy.fill('#group-title', 'crew');
    await ivy.fill('#group-members', 'jack, kate');
    await ivy.click('#group-create');
    await ivy.locator('#group-dialog').waitFor({ state: 'hidden' });
    await ivy.locator('#conv-title', { hasText: 'crew' }).waitFor();
    await ivy.locator('#messages .msg.system', { hasText: 'created' }).waitFor();
    // Not mutual contacts of ivy: jack and kate are invited and join by accepting.
    await ivy.locator('#notice', { hasText: 'Invited jack, kate' }).waitFor();
    for (const p of [jack, kate]) {
      await p.locator('#invites .invite', { hasText: 'invited by ivy' }).locator('.join').click();
      await p.locator('#invites .invite').waitFor({ state: 'detached' });
      await p.locator('#conversations .conv-item', { hasText: 'crew' }).waitFor();
    }
    await ivy.locator('#messages .msg.system', { hasText: 'kate joined' }).waitFor();
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

  /** Make `a` and `b` contacts of each other (both signed in once). */
  async function addContact(page: Page, user: string): Promise<void> {
    await page.fill('#add-contact-name', user);
    await page.press('#add-contact-name', 'Enter');
    await page.locator(`#contacts .contact[data-user="${user}"]`).waitFor();
  }

  /** Whether the element is shown and lies fully inside the viewport's width and height. */
  async function insideViewport(page: Page, selector: string): Promise<boolean> {
    const box = await page.locator(selector).boundingBox();
    const vp = page.viewportSize()!;
    return (
      box !== null &&
      box.width > 0 &&
      box.height > 0 &&
      box.x >= 0 &&
      box.y >= 0 &&
      box.x + box.width <= vp.width + 0.5 &&
      box.y + box.height <= vp.height + 0.5
    );
  }

  void it('fits a 375 px wide phone: the list, then the whole conversation and composer, and back', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const pia = await signIn('pia', { width: 375, height: 667 });
    const quinn = await signIn('quinn');
    await addContact(pia, 'quinn');
    assert.ok(await insideViewport(pia, '#contacts'), 'the contact list is on screen');
    await pia.click('#contacts .contact[data-user="quinn"]');
    for (const sel of ['#messages', '#composer-text', '#send', '#conv-title', '#back']) assert.ok(await insideViewport(pia, sel), `${sel} is on screen`);
    assert.equal(await pia.locator('.side').isVisible(), false, 'one pane at a time');
    await send(pia, 'sent from a phone-width screen, long enough to wrap over several lines of the bubble');
    await quinn.locator('#conversations .conv-item .unread').waitFor();
    await quinn.click('#conversations .conv-item');
    await send(quinn, 'seen on a desktop');
    await pia.locator('#messages .msg .text', { hasText: 'seen on a desktop' }).waitFor();
    await pia.screenshot({ path: shot('chat-phone.png') });
    // The list scrolls to the newest message once it is rendered.
    const end = Date.now() + WAIT_MS;
    while (!(await insideViewport(pia, '#messages .msg:last-child'))) {
      assert.ok(Date.now() < end, 'the newest message is on screen');
      await pia.waitForTimeout(50);
    }
    const scrollWidth = await pia.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(scrollWidth <= 375, `no horizontal scrolling (${scrollWidth} px)`);
    await pia.click('#back');
    assert.ok(await insideViewport(pia, '#conversations'), 'back to the list');
    assert.equal(await pia.locator('.conv').isVisible(), false);
    await pia.context().close();
    await quinn.context().close();
  });

  void it('signs out: back to the sign-in form, offline for contacts, and can sign in as someone else', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const rita = await signIn('rita');
    const sam = await signIn('sam');
    await addContact(sam, 'rita');
    await addContact(rita, 'sam');
    await sam.locator('#contacts .contact[data-user="rita"][data-state="online"]').waitFor();
    await rita.click('#sign-out');
    await rita.locator('#signin-form').waitFor();
    assert.equal(await rita.locator('#app').isVisible(), false);
    assert.equal(new URL(rita.url()).search, '', 'a reload does not sign in again');
    await sam.locator('#contacts .contact[data-user="rita"][data-state="offline"]').waitFor({ timeout: WAIT_MS });
    await rita.fill('#signin-name', 'tom');
    await rita.click('#signin-btn');
    await rita.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
    assert.equal(await rita.textContent('#me-name'), 'tom');
    assert.equal(await rita.locator('#contacts .contact').count(), 0, 'nothing of the previous user is left');
    await rita.context().close();
    await sam.context().close();
  });

  void it("edits and recalls one's own messages; the other side sees both", { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const uma = await signIn('uma');
    const vic = await signIn('vic');
    await addContact(uma, 'vic');
    await uma.click('#contacts .contact[data-user="vic"]');
    await send(uma, 'first draft');
    await send(uma, 'regrettable');
    await vic.locator('#conversations .conv-item .unread').waitFor();
    await vic.click('#conversations .conv-item');
    await vic.locator('#messages .msg .text', { hasText: 'regrettable' }).waitFor();
    assert.equal(await vic.locator('#messages .msg .edit').count(), 0, "no edit on others' messages");

    await uma.locator('#messages .msg.mine', { hasText: 'first draft' }).locator('.edit').click();
    await uma.locator('#edit-dialog[open]').waitFor();
    assert.equal(await uma.inputValue('#edit-text'), 'first draft');
    await uma.fill('#edit-text', 'final text');
    await uma.click('#edit-save');
    await uma.locator('#messages .msg.mine .text', { hasText: 'final text' }).waitFor();
    await vic.locator('#messages .msg .text', { hasText: 'final text' }).waitFor();
    await vic.locator('#messages .msg .meta', { hasText: '(edited)' }).waitFor();

    await uma.locator('#messages .msg.mine', { hasText: 'regrettable' }).locator('.recall').click();
    await uma.locator('#messages .msg.mine.recalled .text', { hasText: '(recalled)' }).waitFor();
    await vic.locator('#messages .msg.recalled .text', { hasText: '(recalled)' }).waitFor();
    assert.deepEqual(await texts(vic), ['final text', '(recalled)']);
    // A fresh page reads the same from history.
    await vic.reload();
    await vic.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
    await vic.click('#conversations .conv-item');
    await vic.locator('#messages .msg.recalled').waitFor();
    assert.deepEqual(await texts(vic), ['final text', '(recalled)']);
    await uma.screenshot({ path: shot('chat-edit-recall.png') });
    await uma.context().close();
    await vic.context().close();
  });

  void it('pages through older history', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const wes = await signIn('wes');
    await signIn('xena').then((p) => p.context().close());
    for (let i = 1; i <= 120; i++) {
      const r = await fetch(`${server.url()}/api/im/send`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ from: 'xena', to: 'wes', clientId: `page-${i}`, data: { text: `m${i}` } }),
      });
      assert.equal(r.status, 200, await r.text());
    }
    await wes.locator('#conversations .conv-item .unread', { hasText: '120' }).waitFor();
    // A new page holds nothing yet: the conversation opens with its newest page.
    await wes.reload();
    await wes.waitForSelector('body[data-ready="true"]', { timeout: WAIT_MS });
    await wes.click('#conversations .conv-item');
    await wes.locator('#messages .msg .text', { hasText: 'm120' }).waitFor();
    assert.equal((await texts(wes)).length, 50, 'one page');
    await wes.click('#older');
    await wes.locator('#messages .msg .text', { hasText: 'm21' }).waitFor();
    assert.equal((await texts(wes)).length, 100);
    await wes.click('#older');
    await wes.locator('#messages .msg .text', { hasText: /^m1$/ }).waitFor();
    assert.deepEqual(
      await texts(wes),
      Array.from({ length: 120 }, (_, i) => `m${i + 1}`),
    );
    await wes.locator('#older').waitFor({ state: 'hidden' });
    await wes.context().close();
  });

  void it('explains that a user who never signed in cannot be messaged yet, and works once they have', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const yan = await signIn('yan');
    // A contact may be added before signing up (the server does not tell who exists): shown offline.
    await addContact(yan, 'zoe');
    assert.equal(await yan.getAttribute('#contacts .contact[data-user="zoe"]', 'data-state'), 'offline');
    assert.equal(await yan.textContent('#contact-error'), '');
    await yan.click('#new-group');
    await yan.fill('#group-members', 'zoe');
    await yan.click('#group-create');
    await yan.locator('#group-error', { hasText: 'zoe has never signed in' }).waitFor();
    assert.ok(await yan.locator('#group-dialog[open]').isVisible(), 'the dialog stays open to fix the names');
    await yan.screenshot({ path: shot('chat-never-signed-in.png') });
    await yan.click('#group-cancel');
    const zoe = await signIn('zoe');
    await yan.click('#contacts .contact[data-user="zoe"]');
    await send(yan, 'welcome, zoe');
    await zoe.locator('#conversations .conv-item .unread').waitFor();
    await yan.context().close();
    await zoe.context().close();
  });

  void it('has a favicon', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const page = await signIn('ada');
    const href = await page.locator('link[rel="icon"]').getAttribute('href');
    const res = await page.request.get(new URL(href!, server.url()).href);
    assert.equal(res.status(), 200);
    assert.equal(res.headers()['content-type'], 'image/svg+xml');
    assert.match(await res.text(), /^<svg /);
    await page.context().close();
  });
});
