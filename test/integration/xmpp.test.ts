/**
 * The XMPP front with real clients: @xmpp/client over WebSocket (RFC 7395) and TCP logs in
 * (SASL PLAIN), binds, queries the roster and disco, sets presence and chats; messages and
 * presence cross to and from native-protocol users; offline messages arrive with delay stamps.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import type { HeraldServer } from '../../src/index.js';
import { ImWs } from '../helpers/im-clients.js';
import { startServer, wsUrl } from '../helpers/server.js';
import { connectXmpp, type XmppHandle } from '../helpers/xmpp.js';

const TRANSPORTS = ['websocket', 'tcp'] as const;

describe('XMPP front with @xmpp/client', () => {
  let server: HeraldServer;
  let dir: string;
  const clients: Array<{ stop(): Promise<void> } | ImWs> = [];
  let n = 0;
  const names = (...base: string[]): string[] => {
    n++;
    return base.map((b) => `${b}${n}`);
  };
  const xmppUser = async (username: string, transport: (typeof TRANSPORTS)[number] = 'websocket', resource?: string): Promise<XmppHandle> => {
    const c = await connectXmpp(server, { username, transport, resource });
    clients.push(c);
    return c;
  };
  const native = async (user: string): Promise<ImWs> => {
    const c = await ImWs.connect(wsUrl(server), user);
    clients.push(c);
    return c;
  };
  const text = (s: Element): string | undefined => s.getChildText('body') ?? undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-'));
    server = await startServer({ dev: true, xmpp: { tcpPort: 0 }, im: { storePath: join(dir, 'im.db'), presenceGraceMs: 50 } });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await (c instanceof ImWs ? c.close() : c.stop());
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const transport of TRANSPORTS) {
    test(`${transport}: logs in with SASL PLAIN, binds the asked resource, answers session, ping and disco`, async () => {
      const [alice] = names('alice');
      const a = await xmppUser(alice!, transport, 'phone');
      assert.equal(a.jid, `${alice}@localhost/phone`);
      await a.xmpp.iqCaller.set(xml('session', 'urn:ietf:params:xml:ns:xmpp-session'));
      await a.xmpp.iqCaller.get(xml('ping', 'urn:xmpp:ping'), 'localhost');
      const info = await a.xmpp.iqCaller.get(xml('query', 'http://jabber.org/protocol/disco#info'), 'localhost');
      assert.equal(info.getChild('identity')?.attrs.category, 'server');
      const features = info.getChildren('feature').map((f) => f.attrs.var);
      assert.ok(features.includes('urn:xmpp:ping') && features.includes('urn:xmpp:sid:0'), String(features));
      const items = await a.xmpp.iqCaller.get(xml('query', 'http://jabber.org/protocol/disco#items'), 'localhost');
      assert.deepEqual(
        items.getChildren('item').map((i) => i.attrs.jid),
        ['conference.localhost'],
        'the group chat service',
      );
    });

    test(`${transport}: an IQ the server does not support is answered with service-unavailable`, async () => {
      const [alice] = names('alice');
      const a = await xmppUser(alice!, transport);
      await assert.rejects(a.xmpp.iqCaller.get(xml('vCard', 'vcard-temp')), (err: Error & { condition?: string }) => err.condition === 'service-unavailable');
      await assert.rejects(
        a.xmpp.iqCaller.get(xml('query', 'jabber:iq:roster'), `someone-else${n}@localhost`),
        (err: Error & { condition?: string }) => err.condition === 'forbidden',
      );
      await assert.rejects(
        a.xmpp.iqCaller.get(xml('query', 'jabber:iq:roster'), 'x@elsewhere.example'),
        (err: Error & { condition?: string }) => err.condition === 'remote-server-not-found',
      );
    });
  }

  test('a chat message from a WebSocket user reaches a TCP user with a server-assigned stanza id, and back', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await xmppUser(alice!, 'websocket');
    const b = await xmppUser(bob!, 'tcp');
    await a.xmpp.send(xml('presence'));
    await b.xmpp.send(xml('presence'));
    await a.xmpp.send(xml('message', { type: 'chat', to: `${bob}@localhost`, id: 'm1' }, xml('body', {}, 'hello <bob> & co')));
    const got = await b.stanzas.take((s) => s.is('message'));
    assert.equal(text(got), 'hello <bob> & co');
    assert.equal(got.attrs.from, `${alice}@localhost`);
    assert.equal(got.attrs.type, 'chat');
    const sid = got.getChild('stanza-id', 'urn:xmpp:sid:0');
    assert.equal(sid?.attrs.by, `${bob}@localhost`);
    assert.match(String(sid?.attrs.id), /^[0-9a-z]+$/);
    assert.equal(got.getChild('delay', 'urn:xmpp:delay'), undefined, 'a live message has no delay stamp');
    await b.xmpp.send(xml('message', { type: 'chat', to: `${alice}@localhost/${a.jid.split('/')[1]}` }, xml('body', {}, 'hi alice')));
    assert.equal(text(await a.stanzas.take((s) => s.is('message'))), 'hi alice');
  });

  test('messages sent while the user was offline arrive at initial presence with delay stamps, once', async () => {
    const [alice, bob] = names('alice', 'bob');
    const b0 = await xmppUser(bob!, 'tcp');
    await b0.stop();
    const a = await xmppUser(alice!);
    for (const t of ['one', 'two', 'three']) await a.xmpp.send(xml('message', { type: 'chat', to: `${bob}@localhost` }, xml('body', {}, t)));
    // Stanzas are handled in order: once the ping is answered the messages are stored.
    await a.xmpp.iqCaller.get(xml('ping', 'urn:xmpp:ping'));
    const b = await xmppUser(bob!, 'tcp');
    await b.xmpp.send(xml('presence'));
    const got = await b.stanzas.takeN(3, (s) => s.is('message'));
    assert.deepEqual(got.map(text), ['one', 'two', 'three']);
    for (const m of got) assert.match(String(m.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // The client acknowledges them (stream management): the inbox cursor follows.
    const probe = await ImWs.connect(wsUrl(server), bob!, { subscribe: false });
    clients.push(probe);
    const deadline = Date.now() + 3_000;
    while ((await probe.ok('im.sync', { limit: 1 })).acked < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal((await probe.ok('im.sync', { limit: 1 })).acked, 3);
    await b.stop();
    // Acknowledged: the next session gets none of them again.
    const b2 = await xmppUser(bob!, 'websocket');
    await b2.xmpp.send(xml('presence'));
    await a.xmpp.send(xml('message', { type: 'chat', to: `${bob}@localhost` }, xml('body', {}, 'four')));
    const next = await b2.stanzas.take((s) => s.is('message'));
    assert.equal(text(next), 'four');
  });

  test("the roster is the user's contacts: roster set adds, remove removes, with roster pushes", async () => {
    const [alice, bob, carol] = names('alice', 'bob', 'carol');
    const b = await xmppUser(bob!);
    const c = await native(carol!);
    const a = await xmppUser(alice!);
    await a.xmpp.iqCaller.set(xml('query', 'jabber:iq:roster', xml('item', { jid: `${bob}@localhost` })));
    const push = await a.stanzas.take((s) => s.is('iq') && s.attrs.type === 'set');
    const pushed = push.getChild('query', 'jabber:iq:roster')?.getChild('item');
    assert.equal(pushed?.attrs.jid, `${bob}@localhost`);
    // Bob has not added alice: no presence is shared yet (subscription none, asked).
    assert.deepEqual([pushed?.attrs.subscription, pushed?.attrs.ask], ['none', 'subscribe']);
    await c.ok('im.contacts.add', { user: bob });
    const roster = await a.xmpp.iqCaller.get(xml('query', 'jabber:iq:roster'));
    assert.deepEqual(
      roster.getChildren('item').map((i) => i.attrs.jid),
      [`${bob}@localhost`],
    );
    // The native protocol sees the same contacts.
    const viaNative = await ImWs.connect(wsUrl(server), alice!);
    clients.push(viaNative);
    assert.deepEqual(
      (await viaNative.ok('im.contacts.list')).contacts.map((x: { user: string }) => x.user),
      [bob],
    );
    await a.xmpp.iqCaller.set(xml('query', 'jabber:iq:roster', xml('item', { jid: `${bob}@localhost`, subscription: 'remove' })));
    assert.equal((await a.xmpp.iqCaller.get(xml('query', 'jabber:iq:roster'))).getChildren('item').length, 0);
    // An unknown account is added like a known one: the roster does not tell who exists.
    await a.xmpp.iqCaller.set(xml('query', 'jabber:iq:roster', xml('item', { jid: `nobody-${n}@localhost` })));
    assert.deepEqual(
      (await a.xmpp.iqCaller.get(xml('query', 'jabber:iq:roster'))).getChildren('item').map((i) => i.attrs.jid),
      [`nobody-${n}@localhost`],
    );
    void b;
  });

  test('presence: a subscription request to a user who has the requester as a contact is approved, show/status become Herald presence both ways', async () => {
    const [alice, bob] = names('alice', 'bob');
    const b = await native(bob!);
    await b.ok('im.presence.set', { state: 'busy', status: 'in a meeting' });
    // Bob has alice as a contact (native): her request makes them mutual contacts.
    await b.ok('im.contacts.add', { user: alice });
    const a = await xmppUser(alice!);
    await a.xmpp.send(xml('presence', { to: `${bob}@localhost`, type: 'subscribe' }));
    const subscribed = await a.stanzas.take((s) => s.is('presence') && s.attrs.type === 'subscribed');
    assert.equal(subscribed.attrs.from, `${bob}@localhost`);
    const bobNow = await a.stanzas.take((s) => s.is('presence') && s.attrs.from === `${bob}@localhost` && s.attrs.type === undefined);
    assert.equal(bobNow.getChildText('show'), 'dnd');
    assert.equal(bobNow.getChildText('status'), 'in a meeting');
    // Alice's XMPP presence reaches him as Herald presence.
    await a.xmpp.send(xml('presence', {}, xml('show', {}, 'away'), xml('status', {}, 'lunch')));
    const ev = await b.event((e) => e.type === 'presence' && e.user === alice && e.state === 'away');
    assert.equal(ev.status, 'lunch');
    const [rec] = (await b.ok('im.presence.get', { users: [alice] })).presence;
    assert.equal(rec.state, 'away');
    // And bob's change over the native protocol reaches alice's XMPP client.
    await b.ok('im.presence.set', { state: 'online' });
    const online = await a.stanzas.take(
      (s) => s.is('presence') && s.attrs.from === `${bob}@localhost` && s.getChild('show') === undefined && s.attrs.type === undefined,
    );
    assert.equal(online.getChildText('status'), null);
  });

  test('presence: a subscription request to a user who has not added the requester is not approved and shows nothing', async () => {
    const [alice, bob] = names('alice', 'bob');
    const b = await native(bob!);
    await b.ok('im.presence.set', { state: 'busy', status: 'private' });
    const a = await xmppUser(alice!);
    await a.xmpp.send(xml('presence'));
    await a.xmpp.send(xml('presence', { to: `${bob}@localhost`, type: 'subscribe' }));
    const push = await a.stanzas.take((s) => s.is('iq') && s.attrs.type === 'set');
    assert.equal(push.getChild('query', 'jabber:iq:roster')?.getChild('item')?.attrs.subscription, 'none');
    // Stanzas are handled in order: once the ping is answered the subscription was handled.
    await a.xmpp.iqCaller.get(xml('ping', 'urn:xmpp:ping'));
    await b.ok('im.presence.set', { state: 'away', status: 'still private' });
    await assert.rejects(
      a.stanzas.take((s) => s.is('presence') && s.attrs.from === `${bob}@localhost`, 300),
      /timed out/,
      'neither an approval nor bob’s presence',
    );
  });

  test("interop: a native user's message reaches the XMPP user and the XMPP user's reply reaches the native user", async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await xmppUser(alice!, 'tcp');
    await a.xmpp.send(xml('presence'));
    const b = await native(bob!);
    const ack = await b.ok('im.send', { to: alice, clientId: 'n1', data: { text: 'from native', mood: 'ok' } });
    const got = await a.stanzas.take((s) => s.is('message'));
    assert.equal(text(got), 'from native');
    assert.equal(got.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id, ack.id);
    assert.deepEqual(JSON.parse(got.getChildText('json', 'urn:xmpp:json:0') ?? 'null'), { text: 'from native', mood: 'ok' });
    await a.xmpp.send(
      xml('message', { type: 'chat', to: `${bob}@localhost` }, xml('body', {}, 'from xmpp'), xml('origin-id', { xmlns: 'urn:xmpp:sid:0', id: 'o-1' })),
    );
    const ev = await b.event((e) => e.type === 'message' && e.message.from === alice);
    assert.deepEqual(ev.message.data, { text: 'from xmpp' });
    assert.equal(ev.message.conversation, [alice, bob].sort().join(':').replace(/^/, 'd:'));
  });

  test('interop: a message sent through the server API as a user reaches the XMPP user', async () => {
    const [alice, dave] = names('alice', 'dave');
    const a = await xmppUser(alice!, 'websocket');
    await a.xmpp.send(xml('presence'));
    await (await native(dave!)).close();
    const res = await fetch(`${server.url()}/api/im/send`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ from: dave, to: alice, clientId: 'api-1', data: { text: 'from the backend' } }),
    });
    assert.equal(res.status, 200, await res.text());
    const got = await a.stanzas.take((s) => s.is('message'));
    assert.equal(got.attrs.from, `${dave}@localhost`);
    assert.equal(text(got), 'from the backend');
  });

  test('a message to an unknown user is answered with service-unavailable; group chat is not offered', async () => {
    const [alice] = names('alice');
    const a = await xmppUser(alice!);
    await a.xmpp.send(xml('message', { type: 'chat', to: `ghost-${n}@localhost`, id: 'g1' }, xml('body', {}, 'anyone?')));
    const err = await a.stanzas.take((s) => s.is('message') && s.attrs.type === 'error');
    assert.equal(err.attrs.id, 'g1');
    assert.ok(err.getChild('error')?.getChild('service-unavailable', 'urn:ietf:params:xml:ns:xmpp-stanzas'));
    await a.xmpp.send(xml('message', { type: 'groupchat', to: `room@localhost`, id: 'g2' }, xml('body', {}, 'hi all')));
    const err2 = await a.stanzas.take((s) => s.is('message') && s.attrs.type === 'error');
    assert.equal(err2.attrs.id, 'g2');
  });
});

describe('XMPP front with connection tokens', () => {
  let server: HeraldServer;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-jwt-'));
    const { TEST_SECRET } = await import('../helpers/tokens.js');
    server = await startServer({ auth: { hmacSecret: TEST_SECRET }, xmpp: { tcpPort: 0 }, im: { storePath: join(dir, 'im.db') } });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const transport of TRANSPORTS) {
    test(`${transport}: the password is the connection token; a wrong or another user's token is not-authorized`, async () => {
      const { signToken } = await import('../helpers/tokens.js');
      const ok = await connectXmpp(server, { username: 'tina', password: await signToken('tina'), transport });
      assert.equal(ok.jid.split('/')[0], 'tina@localhost');
      await ok.stop();
      await assert.rejects(
        connectXmpp(server, { username: 'tina', password: 'not-a-token', transport }),
        (err: Error & { condition?: string }) => err.condition === 'not-authorized',
      );
      await assert.rejects(
        connectXmpp(server, { username: 'tina', password: await signToken('mallory'), transport }),
        (err: Error & { condition?: string }) => err.condition === 'not-authorized',
      );
    });
  }
});
