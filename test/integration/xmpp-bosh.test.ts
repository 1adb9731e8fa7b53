/**
 * XMPP over BOSH (XEP-0124/0206) at /http-bind, by hand over fetch: a session logs in, binds and
 * chats with an @xmpp/client user; requests are handled in rid order, a repeated rid gets the
 * cached answer, held requests come back after `wait`, idle sessions end after `inactivity`;
 * and every bad input gets the terminal binding condition XEP-0124 §17 names.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { HeraldServer } from '../../src/index.js';
import { bodyAttr, boshPost, boshUrl, NS_HTTPBIND, RawBosh } from '../helpers/bosh.js';
import { startServer, waitFor } from '../helpers/server.js';
import { connectXmpp, type XmppHandle } from '../helpers/xmpp.js';

const ORIGIN = 'https://app.example';
const terminated = (text: string, condition: string): boolean => bodyAttr(text, 'type') === 'terminate' && bodyAttr(text, 'condition') === condition;
const message = (to: string, body: string): string => `<message to='${to}' type='chat' xmlns='jabber:client'><body>${body}</body></message>`;

describe('XMPP over BOSH', () => {
  let server: HeraldServer;
  let dir: string;
  const clients: XmppHandle[] = [];
  let n = 0;
  const name = (base: string): string => `${base}${++n}`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-bosh-'));
    server = await startServer({
      dev: true,
      allowedOrigins: [ORIGIN],
      limits: { maxMessageBytes: 8192 },
      xmpp: { boshMaxWaitMs: 1_000, boshInactivityMs: 1_000 },
      im: { storePath: join(dir, 'im.db'), presenceGraceMs: 50 },
    });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.stop();
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('creates a session with the capped wait, hold 1 and two requests, and offers SASL PLAIN', async () => {
    const bosh = new RawBosh(server);
    const text = await bosh.create("wait='600' hold='5'");
    assert.ok(bosh.sid.length >= 16);
    assert.equal(bodyAttr(text, 'wait'), '1');
    assert.equal(bodyAttr(text, 'hold'), '1');
    assert.equal(bodyAttr(text, 'requests'), '2');
    assert.equal(bodyAttr(text, 'inactivity'), '1');
    assert.equal(bodyAttr(text, 'from'), 'localhost');
    assert.equal(bodyAttr(text, 'xmpp:version'), '1.0');
    assert.match(text, /<mechanism>PLAIN<\/mechanism>/);
    assert.doesNotMatch(text, /starttls/);
    assert.ok(terminated(await bosh.send('', "type='terminate'"), '') || bodyAttr(await bosh.send(), 'type') === 'terminate');
  });

  test('logs in, binds and chats both ways with an @xmpp/client user; terminate ends the session', async () => {
    const alice = name('balice');
    const bob = name('bbob');
    const b = await connectXmpp(server, { username: bob });
    clients.push(b);
    await b.xmpp.send(xml('presence'));
    const bosh = new RawBosh(server);
    const jid = await bosh.login(alice);
    assert.equal(jid, `${alice}@localhost/bosh`);
    await bosh.send(message(`${bob}@localhost`, 'hello over bosh'));
    const got = await b.stanzas.take((s) => s.is('message'));
    assert.equal(got.getChildText('body'), 'hello over bosh');
    assert.equal(got.attrs.from, `${alice}@localhost`);
    await bosh.send("<presence xmlns='jabber:client'/>");
    const held = bosh.send();
    await b.xmpp.send(xml('message', { to: `${alice}@localhost`, type: 'chat' }, xml('body', {}, 'hello bosh')));
    let text = await held;
    for (let i = 0; i < 5 && !text.includes('hello bosh'); i++) text += await bosh.send();
    assert.match(text, /<body>hello bosh<\/body>/);
    const end = await bosh.send("<presence type='unavailable' xmlns='jabber:client'/>", "type='terminate'");
    assert.equal(bodyAttr(end, 'type'), 'terminate');
    assert.ok(terminated(await bosh.send(), 'item-not-found'));
    await waitFor(() => server.xmpp!.bosh!.size === 0);
  });

  test('a held request with nothing to say comes back empty after wait', async () => {
    const bosh = new RawBosh(server);
    await bosh.login(name('bwait'));
    const started = Date.now();
    const text = await bosh.send();
    const took = Date.now() - started;
    assert.ok(took >= 900 && took < 3_000, `answered after ${took} ms`);
    assert.match(text, /^<body xmlns="http:\/\/jabber.org\/protocol\/httpbind"\/>$/);
  });

  test('a repeated rid gets the cached answer, and its stanzas are not handled twice', async () => {
    const bosh = new RawBosh(server);
    await bosh.login(name('breplay'));
    const rid = ++bosh.rid;
    const ping = "<iq type='get' id='p1' to='localhost' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>";
    const first = await bosh.sendRid(rid, ping);
    assert.match(first, /id="p1"/);
    const again = await bosh.sendRid(rid, ping);
    assert.equal(again, first);
    const next = await bosh.send();
    assert.doesNotMatch(next, /id="p1"/);
  });

  test('a request ahead of a missing rid waits for it; both are handled in rid order', async () => {
    const alice = name('border');
    const bob = name('border-b');
    const b = await connectXmpp(server, { username: bob });
    clients.push(b);
    await b.xmpp.send(xml('presence'));
    const bosh = new RawBosh(server);
    await bosh.login(alice);
    const rid = bosh.rid;
    const second = bosh.sendRid(rid + 2, message(`${bob}@localhost`, 'second'));
    await new Promise((r) => setTimeout(r, 100));
    const first = bosh.sendRid(rid + 1, message(`${bob}@localhost`, 'first'));
    bosh.rid = rid + 2;
    const m1 = await b.stanzas.take((s) => s.is('message'));
    const m2 = await b.stanzas.take((s) => s.is('message'));
    assert.deepEqual([m1.getChildText('body'), m2.getChildText('body')], ['first', 'second']);
    await Promise.all([first, second]);
  });

  test('an idle session ends after inactivity and its user goes offline', async () => {
    // Earlier tests' sessions end by inactivity too: start from none.
    await waitFor(() => server.xmpp!.bosh!.size === 0, 5_000, 'earlier BOSH sessions to end');
    const bosh = new RawBosh(server);
    const before = server.core.hub.connectionCount;
    await bosh.login(name('bidle'));
    assert.equal(server.core.hub.connectionCount, before + 1);
    await bosh.send("<presence xmlns='jabber:client'/>");
    // The last request came back; nothing is held from now on.
    await waitFor(() => server.core.hub.connectionCount === before, 5_000, 'the idle BOSH session to end');
    assert.ok(terminated(await bosh.send(), 'item-not-found'));
  });

  test('terminal binding conditions: unknown sid, rid outside the window, malformed and oversized bodies, wrong host', async () => {
    const bosh = new RawBosh(server);
    await bosh.create();
    assert.ok(terminated((await boshPost(server, `<body rid='5' sid='nope' xmlns='${NS_HTTPBIND}'/>`)).text, 'item-not-found'));
    assert.ok(terminated(await bosh.sendRid(bosh.rid + 3), 'item-not-found'));
    assert.ok(terminated(await bosh.send(), 'item-not-found'), 'the session ended');

    const malformed = new RawBosh(server);
    await malformed.create();
    const { text } = await boshPost(server, `<body rid='${malformed.rid + 1}' sid='${malformed.sid}' xmlns='${NS_HTTPBIND}'><message>`);
    assert.ok(terminated(text, 'bad-request'), text);
    assert.ok(terminated(await malformed.send(), 'item-not-found'), 'a malformed body ends its session');

    for (const body of [
      '<notbody/>',
      `<body xmlns='${NS_HTTPBIND}' to='localhost'/>`,
      `<body rid='x' xmlns='${NS_HTTPBIND}' to='localhost'/>`,
      `<!DOCTYPE body [<!ENTITY a "aaaa">]><body rid='1' xmlns='${NS_HTTPBIND}' to='localhost'>&a;</body>`,
      '',
    ]) {
      assert.ok(terminated((await boshPost(server, body)).text, 'bad-request'), body);
    }
    assert.ok(terminated((await boshPost(server, `<body rid='1' to='elsewhere.example' xmlns='${NS_HTTPBIND}'/>`)).text, 'host-unknown'));
    const big = `<body rid='1' to='localhost' xmlns='${NS_HTTPBIND}'>${message('x@localhost', 'a'.repeat(9000))}</body>`;
    const oversized = await boshPost(server, big);
    assert.equal(oversized.status, 200);
    assert.ok(terminated(oversized.text, 'policy-violation'));
  });

  test('a polling session (hold 0) that polls faster than polling seconds gets policy-violation', async () => {
    const bosh = new RawBosh(server);
    const created = await bosh.create("wait='60' hold='0'");
    assert.equal(bodyAttr(created, 'hold'), '0');
    assert.equal(bodyAttr(created, 'polling'), '2');
    assert.equal(bodyAttr(await bosh.send(), 'type'), undefined);
    assert.ok(terminated(await bosh.send(), 'policy-violation'));
  });

  test('a stream error travels as remote-stream-error with the <stream:error/> inside', async () => {
    const bosh = new RawBosh(server);
    await bosh.create();
    const text = await bosh.send("<message to='x@localhost' xmlns='jabber:client'><body>before auth</body></message>");
    assert.ok(terminated(text, 'remote-stream-error'), text);
    assert.match(text, /<stream:error xmlns:stream="http:\/\/etherx.jabber.org\/streams"><not-authorized xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
  });

  test('CORS: an allowed origin gets the preflight and the headers, another origin is refused', async () => {
    const pre = await fetch(boshUrl(server), { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'POST' } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get('access-control-allow-origin'), ORIGIN);
    assert.match(pre.headers.get('access-control-allow-methods') ?? '', /POST/);
    const ok = await boshPost(
      server,
      `<body rid='1' to='localhost' wait='1' hold='1' xmlns='${NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh' xmpp:version='1.0'/>`,
      {
        origin: ORIGIN,
      },
    );
    assert.ok(bodyAttr(ok.text, 'sid'));
    const refused = await fetch(boshUrl(server), {
      method: 'POST',
      headers: { origin: 'https://evil.example' },
      body: `<body rid='1' to='localhost' xmlns='${NS_HTTPBIND}'/>`,
    });
    assert.equal(refused.status, 403);
    assert.equal(refused.headers.get('access-control-allow-origin'), null);
    assert.equal((await fetch(boshUrl(server))).status, 405);
  });
});

describe('XMPP over BOSH: admission', () => {
  let server: HeraldServer;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-bosh-adm-'));
    server = await startServer({ dev: true, limits: { maxConnections: 2 }, xmpp: { boshInactivityMs: 1_000 }, im: { storePath: join(dir, 'im.db') } });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('sessions count against limits.maxConnections like any client: past it, policy-violation', async () => {
    const a = new RawBosh(server);
    const b = new RawBosh(server);
    await a.create();
    await b.create();
    const c = new RawBosh(server);
    const refused = await c.create();
    assert.ok(terminated(refused, 'policy-violation'), refused);
    await a.send('', "type='terminate'");
    await waitFor(() => server.core.clients.admitted < 2);
    assert.ok(bodyAttr(await new RawBosh(server).create(), 'sid'));
  });
});
