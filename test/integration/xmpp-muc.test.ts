/**
 * The MUC subset (XEP-0045) over Herald groups with @xmpp/client beside native users: joining a
 * group's room, occupant presence, groupchat both ways with the sender's reflection, the room's history at join,
 * and the errors for non-members, unknown rooms and messages without joining.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import { ImWs } from '../helpers/im-clients.js';
import { useImServer } from '../helpers/im-fixture.js';
import type { XmppHandle } from '../helpers/xmpp.js';

const MUC = 'http://jabber.org/protocol/muc';
const MUC_USER = 'http://jabber.org/protocol/muc#user';
const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

describe('XMPP group chat (XEP-0045 subset over Herald groups)', () => {
  const fx = useImServer('xmpp-muc', () => ({ dev: true, im: { presenceGraceMs: 50 } }));
  const { names } = fx;
  const native = (user: string): Promise<ImWs> => fx.connect(user);
  const xmppUser = (username: string): Promise<XmppHandle> => fx.xmpp({ username, available: true });
  const conditionOf = (s: Element): string | undefined =>
    s.getChild('error')?.children.find((x): x is Element => typeof x !== 'string' && x.attrs.xmlns === STANZAS)?.name;

  test('a member joins the room of a group, sees online members, and chats with native members both ways', async () => {
    const [alice, bob, carol] = names('alice', 'bob', 'carol');
    const b = await native(bob!);
    await native(carol!);
    // The backend creates the group (all join at once).
    const res = await fetch(`${fx.server.url()}/api/im/groups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ owner: bob, title: 'Team', members: [alice, carol] }),
    });
    const created = (await res.json()) as { group: string };
    assert.equal(res.status, 200, JSON.stringify(created));
    const group = created.group;
    const room = `${group.slice(2)}@conference.localhost`;
    const a = await xmppUser(alice!);
    const items = await a.xmpp.iqCaller.get(xml('query', 'http://jabber.org/protocol/disco#items'), 'conference.localhost');
    assert.deepEqual(
      items.getChildren('item').map((i) => [i.attrs.jid, i.attrs.name]),
      [[room, 'Team']],
    );
    await a.xmpp.send(xml('presence', { to: `${room}/Ali` }, xml('x', { xmlns: MUC })));
    const bobOcc = await a.stanzas.take((s) => s.is('presence') && s.attrs.from === `${room}/${bob}`);
    assert.equal(bobOcc.getChild('x', MUC_USER)?.getChild('item')?.attrs.affiliation, 'owner');
    const self = await a.stanzas.take((s) => s.is('presence') && s.attrs.from === `${room}/${alice}`);
    const codes = self
      .getChild('x', MUC_USER)!
      .getChildren('status')
      .map((s) => s.attrs.code);
    assert.deepEqual(codes, ['100', '110', '210'], 'the nick is the user id');
    await a.stanzas.take((s) => s.is('message') && s.attrs.type === 'groupchat' && s.getChild('subject') !== undefined);

    await b.ok('im.send', { conversation: group, clientId: 'g1', data: { text: 'hello team' } });
    const got = await a.stanzas.take((s) => s.is('message') && s.attrs.type === 'groupchat' && s.getChildText('body') === 'hello team');
    assert.equal(got.attrs.from, `${room}/${bob}`);
    assert.equal(got.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.by, room);

    await a.xmpp.send(xml('message', { type: 'groupchat', to: room, id: 'mine-1' }, xml('body', {}, 'hi all')));
    const ev = await b.event((e) => e.type === 'message' && e.message.conversation === group && e.message.from === alice);
    assert.deepEqual(ev.message.data, { text: 'hi all' });
    const echo = await a.stanzas.take((s) => s.is('message') && s.attrs.type === 'groupchat' && s.getChildText('body') === 'hi all');
    assert.equal(echo.attrs.id, 'mine-1', 'the sender gets its message reflected with its own id');
    assert.equal(echo.getChild('stanza-id', 'urn:xmpp:sid:0')?.attrs.id, ev.message.id);

    // Bob goes away: his occupant presence follows.
    await b.ok('im.presence.set', { state: 'away' });
    const away = await a.stanzas.take((s) => s.is('presence') && s.attrs.from === `${room}/${bob}` && s.getChildText('show') === 'away');
    assert.ok(away);
    // Leaving.
    await a.xmpp.send(xml('presence', { to: `${room}/${alice}`, type: 'unavailable' }));
    await a.stanzas.take((s) => s.is('presence') && s.attrs.from === `${room}/${alice}` && s.attrs.type === 'unavailable');
    await b.ok('im.send', { conversation: group, clientId: 'g2', data: { text: 'after she left' } });
    await assert.rejects(
      a.stanzas.take((s) => s.getChildText('body') === 'after she left', 300),
      /timed out/,
    );
  });

  test('a join gets the last messages of the room with delay stamps before the subject; maxstanzas limits them, 0 sends none', async () => {
    const [alice, bob] = names('alice', 'bob');
    const b = await native(bob!);
    const res = await fetch(`${fx.server.url()}/api/im/groups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ owner: bob, title: 'History', members: [alice] }),
    });
    const { group } = (await res.json()) as { group: string };
    const room = `${group.slice(2)}@conference.localhost`;
    for (const text of ['one', 'two', 'three']) await b.ok('im.send', { conversation: group, clientId: text, data: { text } });
    const a = await xmppUser(alice!);
    /** Join, and collect the room's messages until the subject. */
    const join = async (history?: Record<string, string>): Promise<Element[]> => {
      await a.xmpp.send(xml('presence', { to: `${room}/${alice}` }, xml('x', { xmlns: MUC }, ...(history ? [xml('history', history)] : []))));
      const got: Element[] = [];
      for (;;) {
        const s = await a.stanzas.take((x) => x.is('message') && x.attrs.type === 'groupchat' && String(x.attrs.from).startsWith(room));
        if (s.getChild('subject')) return got;
        got.push(s);
      }
    };
    const leave = async (): Promise<void> => {
      await a.xmpp.send(xml('presence', { to: `${room}/${alice}`, type: 'unavailable' }));
      await a.stanzas.take((s) => s.is('presence') && s.attrs.from === `${room}/${alice}` && s.attrs.type === 'unavailable');
    };
    const all = await join();
    assert.deepEqual(
      all.map((s) => s.getChildText('body')),
      ['one', 'two', 'three'],
    );
    assert.ok(all.every((s) => s.attrs.from === `${room}/${bob}` && s.getChild('delay', 'urn:xmpp:delay') !== undefined));
    await leave();
    assert.deepEqual(
      (await join({ maxstanzas: '1' })).map((s) => s.getChildText('body')),
      ['three'],
    );
    await leave();
    assert.deepEqual(await join({ maxchars: '0' }), []);
  });

  test('non-members, unknown rooms, messages without joining and private messages get the MUC errors', async () => {
    const [alice, bob, mallory] = names('alice', 'bob', 'mallory');
    await native(alice!);
    const b = await native(bob!);
    await b.ok('im.contacts.add', { user: alice });
    const res = await fetch(`${fx.server.url()}/api/im/groups`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ owner: bob, members: [alice] }),
    });
    const group = ((await res.json()) as { group: string }).group;
    const room = `${group.slice(2)}@conference.localhost`;
    const m = await xmppUser(mallory!);
    await m.xmpp.send(xml('presence', { to: `${room}/m` }, xml('x', { xmlns: MUC })));
    const denied = await m.stanzas.take((s) => s.is('presence') && s.attrs.type === 'error');
    assert.equal(conditionOf(denied), 'registration-required');
    await m.xmpp.send(xml('presence', { to: `ffff0000ffff0000@conference.localhost/m` }, xml('x', { xmlns: MUC })));
    const unknown = await m.stanzas.take((s) => s.is('presence') && s.attrs.type === 'error' && s.attrs.from?.startsWith('ffff') === true);
    assert.equal(conditionOf(unknown), 'item-not-found');
    await m.xmpp.send(xml('message', { type: 'groupchat', to: room, id: 'x1' }, xml('body', {}, 'let me in')));
    const notIn = await m.stanzas.take((s) => s.is('message') && s.attrs.type === 'error' && s.attrs.id === 'x1');
    assert.equal(conditionOf(notIn), 'not-acceptable');
    await assert.rejects(
      m.xmpp.iqCaller.get(xml('query', 'http://jabber.org/protocol/disco#info'), room),
      (e: Error & { condition?: string }) => e.condition === 'item-not-found',
    );
    assert.equal(await b.gets((e) => e.type === 'message' && e.message.conversation === group && e.message.from === mallory, 200), false);
  });
});
