/**
 * strophe.js over BOSH (XEP-0206) in headless Chromium, from a page on another origin listed in
 * `allowedOrigins` (CORS preflight included): it logs in, chats with an @xmpp/client user, and
 * after a page reload restores its BOSH session from sessionStorage (strophe's `keepalive`) and
 * receives the message sent while the page was away.
 */
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { after, before, describe, it } from 'node:test';
import { xml } from '@xmpp/client';
import type { Browser, Page } from 'playwright-core';
import type { HeraldServer } from '../../src/index.js';
import { E2E_TEST_TIMEOUT_MS, launchBrowser, WAIT_MS } from '../helpers/browser.js';
import { startServer, waitFor } from '../helpers/server.js';
import { connectXmpp, type XmppHandle } from '../helpers/xmpp.js';

// The package exports no path to its browser bundle: find it beside the resolved entry point.
const STROPHE = readFileSync(join(dirname(createRequire(import.meta.url).resolve('strophe.js')), 'strophe.umd.min.js'));
const PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>bosh</title><script src="/strophe.js"></script></head><body>chat</body></html>';

/** A page origin other than Herald's, serving strophe.js. */
async function otherOrigin(): Promise<{ server: Server; origin: string }> {
  const server = createServer((req, res) => {
    if (req.url === '/strophe.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(STROPHE);
    else res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, origin: `http://localhost:${(server.address() as AddressInfo).port}` };
}

/**
 * In the page: connect (or restore) strophe over BOSH and collect chat bodies in `window.got`.
 * Plain browser script (a string, so that no compiler helper is injected into it).
 */
const START_STROPHE = `(({ url, jid, restore }) => new Promise((resolve, reject) => {
  const S = window.Strophe;
  const conn = new S.Connection(url, { keepalive: true });
  window.conn = conn;
  window.got = [];
  conn.addHandler((m) => {
    const body = m.getElementsByTagName('body')[0];
    if (body) window.got.push(body.textContent);
    return true;
  }, null, 'message');
  const cb = (status, condition) => {
    if (status === S.Status.CONNECTED) {
      conn.send(window.$pres().tree());
      resolve('connected');
    } else if (status === S.Status.ATTACHED) resolve('attached');
    else if (status === S.Status.AUTHFAIL || status === S.Status.CONNFAIL) reject(new Error('strophe: ' + (condition || status)));
  };
  if (restore) conn.restore(jid, cb);
  else conn.connect(jid, 'any', cb);
}))`;

function startStrophe(page: Page, opts: { url: string; jid: string; restore: boolean }): Promise<string> {
  return page.evaluate(`${START_STROPHE}(${JSON.stringify(opts)})`) as Promise<string>;
}

void describe('strophe.js over BOSH in Chromium', () => {
  let herald: HeraldServer;
  let other: { server: Server; origin: string };
  let browser: Browser;
  let page: Page;
  let bob: XmppHandle;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-e2e-bosh-'));
    other = await otherOrigin();
    herald = await startServer({
      dev: true,
      allowedOrigins: [other.origin],
      xmpp: { boshMaxWaitMs: 5_000, boshInactivityMs: 30_000 },
      im: { storePath: join(dir, 'im.db') },
    });
    browser = await launchBrowser();
    page = await browser.newPage();
    await page.goto(other.origin);
    bob = await connectXmpp(herald, { username: 'bbob' });
    await bob.xmpp.send(xml('presence'));
  });
  after(async () => {
    await bob?.stop();
    await browser?.close();
    await herald?.close();
    await new Promise((r) => other?.server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  void it('logs in over BOSH from another origin and chats with an @xmpp/client user', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    assert.equal(await startStrophe(page, { url: `${herald.url()}/http-bind`, jid: 'balice@localhost', restore: false }), 'connected');
    await page.evaluate("window.conn.send(window.$msg({ to: 'bbob@localhost', type: 'chat' }).c('body').t('hello from the browser').tree())");
    const got = await bob.stanzas.take((s) => s.is('message'), WAIT_MS);
    assert.equal(got.getChildText('body'), 'hello from the browser');
    assert.equal(got.attrs.from, 'balice@localhost');
    await bob.xmpp.send(xml('message', { to: 'balice@localhost', type: 'chat' }, xml('body', {}, 'hello browser')));
    await page.waitForFunction("window.got.includes('hello browser')", undefined, { timeout: WAIT_MS });
  });

  void it('restores the BOSH session after a page reload and gets what arrived meanwhile', { timeout: E2E_TEST_TIMEOUT_MS }, async () => {
    const sessions = herald.xmpp!.bosh!.size;
    await page.goto('about:blank');
    // The page's held request was dropped with the page: nothing is written to a dead connection.
    await waitFor(() => herald.xmpp!.bosh!.held === 0, WAIT_MS, 'the held request to be dropped');
    await bob.xmpp.send(xml('message', { to: 'balice@localhost', type: 'chat' }, xml('body', {}, 'while you were away')));
    await page.goto(other.origin);
    assert.equal(await startStrophe(page, { url: `${herald.url()}/http-bind`, jid: 'balice@localhost', restore: true }), 'attached');
    await page.waitForFunction("window.got.includes('while you were away')", undefined, { timeout: WAIT_MS });
    assert.equal(herald.xmpp!.bosh!.size, sessions, 'the same BOSH session, not a new one');
  });
});
