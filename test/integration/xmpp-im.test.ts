/**
 * XMPP messenger extensions on Herald's IM, with @xmpp/client beside native-protocol users:
 * delivery receipts (XEP-0184), chat states (XEP-0085), chat markers (XEP-0333), correction
 * (XEP-0308), retraction (XEP-0424) and carbons (XEP-0280), both ways, and the stanza errors
 * for references to other users' messages or malformed ones.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import { ImWs } from '../helpers/im-clients.js';
import { useImServer } from '../helpers/im-fixture.js';
import type { XmppHandle } from '../helpers/xmpp.js';

const STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas';

describe('XMPP messenger extensions', () => {
  const fx = useImServer('xmpp-im', () => ({ dev: true, xmpp: { tcpPort: 0 }, im: { presenceGraceMs: 50, typingPerSecond: 50 } }));
  const { names } = fx;
  const native = (user: string): Promise<ImWs> => fx.connect(user);
  /** An available XMPP user (initial presence sent and echoed). */
  const xmppUser = (username: string, resource?: string, transport: 'websocket' | 'tcp' = 'websocket'): Promise<XmppHandle> =>
    fx.xmpp({ username, resource, transport, available: true });
  const chat = (to: string, id: string | undefined, ...children: Element[]): Element =>
    xml('message', { type: 'chat', to: `${to}@localhost`, id }, ...children);
  const body = (t: string): Element => xml('body', {}, t);
  const dm = (a: string, b: string): string => `d:${[a, b].sort().join(':')}`;
  /** Wait until everything the client sent so far was handled (stanzas are handled in order). */
  const settled = (c: XmppHandle): Promise<unknown> => c.xmpp.iqCaller.get(xml('ping', 'urn:xmpp:ping'));
  const errorOf = async (c: XmppHandle, id: string): Promise<string | undefined> => {
    const err = await c.stanzas.take((s) => s.is('message') && s.attrs.type === 'error' && s.attrs.id === id);
    return err.getChild('error')?.children.find((x): x is Element => typeof x !== 'string' && x.attrs.xmlns === STANZAS)?.name;
  };

  test('disco#info of the server and of the account lists every extension offered', async () => {
    const [alice] = names('alice');
    const a = await xmppUser(alice!);
    for (const to of ['localhost', `${alice}@localhost`]) {
      const info = await a.xmpp.iqCaller.get(xml('query', 'http://jabber.org/protocol/disco#info'), to);
      const features = info.getChildren('feature').map((f) => f.attrs.var as string);
      for (const f of [
        'urn:xmpp:receipts',
        'http://jabber.org/protocol/chatstates',
        'urn:xmpp:chat-markers:0',
        'urn:xmpp:message-correct:0',
        'urn:xmpp:message-retract:1',
        'urn:xmpp:carbons:2',
        'urn:xmpp:mam:2',
      ])
        assert.ok(features.includes(f), `${to} lacks ${f}: ${features.join(' ')}`);
    }
  });

  test('XEP-0184: a receipt request is answered once the XMPP or native peer has the message', async () => {
    const [alice, bob, carol] = names('alice', 'bob', 'carol');
    const a = await xmppUser(alice!, undefined, 'tcp');
    const b = await xmppUser(bob!);
    await a.xmpp.send(chat(bob!, 'r1', body('did you get this?'), xml('request', { xmlns: 'urn:xmpp:receipts' })));
    const got = await b.stanzas.take((s) => s.is('message') && s.getChildText('body') === 'did you get this?');
    assert.ok(got.getChild('markable', 'urn:xmpp:chat-markers:0'), 'messages are markable');
    const receipt = await a.stanzas.take((s) => s.is('message') && s.getChild('received', 'urn:xmpp:receipts') !== undefined);
    assert.equal(receipt.getChild('received')?.attrs.id, 'r1');
    assert.equal(receipt.attrs.from, `${bob}@localhost`);
    // A native peer acknowledges its inbox: that is the delivery.
    const c = await native(carol!);
    await a.xmpp.send(chat(carol!, 'r2', body('and you?'), xml('request', { xmlns: 'urn:xmpp:receipts' })));
    await a.xmpp.send(chat(carol!, 'r3', body('no receipt asked')));
    const ev = await c.event((e) => e.type === 'message' && e.message.data.text === 'and you?');
    assert.equal(
      (await a.stanzas.take((s) => s.getChild('received', 'urn:xmpp:receipts') !== undefined, 300).catch(() => undefined))?.toString(),
      undefined,
      'no receipt before the native peer acks',
    );
    await c.ok('im.ack', { seq: ev.seq });
    const r2 = await a.stanzas.take((s) => s.getChild('received', 'urn:xmpp:receipts') !== undefined);
    assert.equal(r2.getChild('received')?.attrs.id, 'r2');
    const more = await c.event((e) => e.type === 'message' && e.message.data.text === 'no receipt asked');
    await c.ok('im.ack', { seq: more.seq });
    await assert.rejects(
      a.stanzas.take((s) => s.getChild('received', 'urn:xmpp:receipts') !== undefined, 300),
      /timed out/,
      'only requested receipts',
    );
  });

  test('XEP-0085: composing is Herald typing, both ways; other chat states and chat states before any message are dropped', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await xmppUser(alice!);
    const b = await native(bob!);
    // No conversation yet: dropped without an error.
    await a.xmpp.send(chat(bob!, 'c0', xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })));
    await settled(a);
    await a.xmpp.send(chat(bob!, 'c1', body('hi')));
    await b.event((e) => e.type === 'message');
    await a.xmpp.send(chat(bob!, 'c2', xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })));
    const typing = await b.event((e) => e.type === 'typing');
    assert.deepEqual(typing, { type: 'typing', conversation: dm(alice!, bob!), user: alice });
    await a.xmpp.send(chat(bob!, 'c3', xml('paused', { xmlns: 'http://jabber.org/protocol/chatstates' })));
    await settled(a);
    assert.equal(await b.gets((e) => e.type === 'typing', 200), false, 'paused is not typing');
    await b.ok('im.typing', { conversation: dm(alice!, bob!) });
    const composing = await a.stanzas.take((s) => s.getChild('composing', 'http://jabber.org/protocol/chatstates') !== undefined);
    assert.equal(composing.attrs.from, `${bob}@localhost`);
    assert.equal(composing.getChild('body'), undefined);
    assert.equal(a.stanzas.items.filter((s) => s.attrs.type === 'error').length, 0);
  });

  test('XEP-0333: displayed is a read receipt, and a read receipt is displayed with the id the sender knows', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await xmppUser(alice!);
    const b = await native(bob!);
    const ack = await b.ok('im.send', { to: alice, clientId: 'n1', data: { text: 'read me' } });
    const got = await a.stanzas.take((s) => s.is('message') && s.getChildText('body') === 'read me');
    assert.equal(got.attrs.id, ack.id);
    await a.xmpp.send(chat(bob!, 'd1', xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: got.attrs.id })));
    const read = await b.event((e) => e.type === 'receipt' && e.kind === 'read' && e.user === alice);
    assert.equal(read.seq, ack.seq);
    assert.equal(read.conversation, dm(alice!, bob!));
    // The other way: bob reads alice's message; she sees her own stanza id.
    await a.xmpp.send(chat(bob!, 'mine-1', body('my message')));
    const ev = await b.event((e) => e.type === 'message' && e.message.from === alice);
    await b.ok('im.read', { conversation: dm(alice!, bob!), seq: ev.message.seq });
    const marker = await a.stanzas.take((s) => s.getChild('displayed', 'urn:xmpp:chat-markers:0') !== undefined);
    assert.equal(marker.getChild('displayed')?.attrs.id, 'mine-1');
    assert.equal(marker.attrs.from, `${bob}@localhost`);
  });

  test('XEP-0308 and XEP-0424: a correction is an edit and a retraction a recall, both ways', async () => {
    const [alice, bob, carol] = names('alice', 'bob', 'carol');
    const a = await xmppUser(alice!, undefined, 'tcp');
    const b = await native(bob!);
    const c = await xmppUser(carol!);
    await a.xmpp.send(chat(bob!, 'a1', body('helo')));
    const orig = await b.event((e) => e.type === 'message' && e.message.kind === 'message');
    await a.xmpp.send(chat(bob!, 'a2', body('hello'), xml('replace', { xmlns: 'urn:xmpp:message-correct:0', id: 'a1' })));
    const edit = await b.event((e) => e.type === 'message' && e.message.kind === 'edit');
    assert.equal(edit.message.target, orig.message.id);
    assert.deepEqual(edit.message.data, { text: 'hello' });
    assert.deepEqual(
      (await b.ok('im.history', { conversation: dm(alice!, bob!), limit: 5 })).messages.find((m: { id: string }) => m.id === orig.message.id).data,
      {
        text: 'hello',
      },
    );
    await a.xmpp.send(
      chat(
        bob!,
        'a3',
        xml('retract', { xmlns: 'urn:xmpp:message-retract:1', id: 'a1' }),
        xml('fallback', { xmlns: 'urn:xmpp:fallback:0', for: 'urn:xmpp:message-retract:1' }),
        body('This person attempted to retract a previous message'),
      ),
    );
    const recall = await b.event((e) => e.type === 'message' && e.message.kind === 'recall');
    assert.equal(recall.message.target, orig.message.id);
    assert.equal(await b.gets((e) => e.type === 'message' && e.message.kind === 'message', 200), false, 'the fallback body is not a message');
    // Native edits and recalls reach an XMPP peer as a correction and a retraction of the id it saw.
    const sent = await b.ok('im.send', { to: carol, clientId: 'n1', data: { text: 'tpyo' } });
    const seen = await c.stanzas.take((s) => s.is('message') && s.getChildText('body') === 'tpyo');
    await b.ok('im.edit', { message: sent.id, data: { text: 'typo' } });
    const corr = await c.stanzas.take((s) => s.getChild('replace', 'urn:xmpp:message-correct:0') !== undefined);
    assert.equal(corr.getChild('replace')?.attrs.id, seen.attrs.id);
    assert.equal(corr.getChildText('body'), 'typo');
    await b.ok('im.recall', { message: sent.id });
    const retr = await c.stanzas.take((s) => s.getChild('retract', 'urn:xmpp:message-retract:1') !== undefined);
    assert.equal(retr.getChild('retract')?.attrs.id, seen.attrs.id);
    assert.ok(retr.getChild('fallback', 'urn:xmpp:fallback:0'));
  });

  test("bad references: another user's message, another conversation, unknown and malformed ids get the RFC errors", async () => {
    const [alice, bob, carol, dave] = names('alice', 'bob', 'carol', 'dave');
    const a = await xmppUser(alice!);
    const b = await native(bob!);
    const c = await native(carol!);
    await native(dave!);
    const fromBob = await b.ok('im.send', { to: alice, clientId: 'b1', data: { text: 'bob says' } });
    await a.stanzas.take((s) => s.getChildText('body') === 'bob says');
    const carolDave = await c.ok('im.send', { to: dave, clientId: 'c1', data: { text: 'private' } });
    await a.xmpp.send(chat(bob!, 'own', body('mine')));
    await settled(a);
    // Correcting bob's message: not hers.
    await a.xmpp.send(chat(bob!, 'e1', body('forged'), xml('replace', { xmlns: 'urn:xmpp:message-correct:0', id: fromBob.id })));
    assert.equal(await errorOf(a, 'e1'), 'forbidden');
    // Retracting, marking or correcting a message of a conversation she is not in: as if it did not exist.
    await a.xmpp.send(chat(carol!, 'e2', xml('retract', { xmlns: 'urn:xmpp:message-retract:1', id: carolDave.id })));
    assert.equal(await errorOf(a, 'e2'), 'item-not-found');
    await a.xmpp.send(chat(dave!, 'e3', xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: carolDave.id })));
    assert.equal(await errorOf(a, 'e3'), 'item-not-found');
    // Her own message, referenced in the conversation with someone else.
    await a.xmpp.send(chat(carol!, 'e4', body('x'), xml('replace', { xmlns: 'urn:xmpp:message-correct:0', id: 'own' })));
    assert.equal(await errorOf(a, 'e4'), 'item-not-found');
    await a.xmpp.send(chat(bob!, 'e5', body('x'), xml('replace', { xmlns: 'urn:xmpp:message-correct:0', id: 'no-such-id' })));
    assert.equal(await errorOf(a, 'e5'), 'item-not-found');
    await a.xmpp.send(chat(bob!, 'e6', body('x'), xml('replace', { xmlns: 'urn:xmpp:message-correct:0' })));
    assert.equal(await errorOf(a, 'e6'), 'bad-request');
    await a.xmpp.send(chat(bob!, 'e7', xml('displayed', { xmlns: 'urn:xmpp:chat-markers:0', id: 'x'.repeat(129) })));
    assert.equal(await errorOf(a, 'e7'), 'bad-request');
    // Nothing was changed, and the stream goes on.
    const hist = (await c.ok('im.history', { conversation: dm(carol!, dave!), limit: 5 })).messages;
    assert.deepEqual(
      hist.map((m: { kind: string }) => m.kind),
      ['message'],
    );
    assert.equal(
      (await b.ok('im.history', { conversation: dm(alice!, bob!), limit: 5 })).messages.filter((m: { kind: string }) => m.kind !== 'message').length,
      0,
    );
    await settled(a);
  });

  test("XEP-0280: with carbons on, a resource gets copies of the user's messages sent elsewhere, never of its own", async () => {
    const [alice, bob] = names('alice', 'bob');
    const phone = await xmppUser(alice!, 'phone');
    const desk = await xmppUser(alice!, 'desk', 'tcp');
    const b = await xmppUser(bob!);
    for (const r of [phone, desk]) await r.xmpp.iqCaller.set(xml('enable', { xmlns: 'urn:xmpp:carbons:2' }));
    await phone.xmpp.send(chat(bob!, 'p1', body('from my phone')));
    await b.stanzas.take((s) => s.getChildText('body') === 'from my phone');
    const carbon = await desk.stanzas.take((s) => s.getChild('sent', 'urn:xmpp:carbons:2') !== undefined);
    assert.equal(carbon.attrs.from, `${alice}@localhost`);
    const inner = carbon.getChild('sent')?.getChild('forwarded', 'urn:xmpp:forward:0')?.getChild('message');
    assert.equal(inner?.attrs.to, `${bob}@localhost`);
    assert.equal(inner?.attrs.from, `${alice}@localhost`);
    assert.equal(inner?.getChildText('body'), 'from my phone');
    // A native session of alice sends too: both resources get the copy.
    const n = await native(alice!);
    await n.ok('im.send', { to: bob, clientId: 'n1', data: { text: 'from the web' } });
    for (const r of [phone, desk]) {
      const copy = await r.stanzas.take((s) => s.getChild('sent', 'urn:xmpp:carbons:2') !== undefined && s.toString().includes('from the web'));
      assert.ok(copy);
    }
    // Bob's reply reaches every resource of alice as a plain message.
    await b.xmpp.send(chat(alice!, 'b1', body('got both')));
    for (const r of [phone, desk]) await r.stanzas.take((s) => s.is('message') && s.getChildText('body') === 'got both');
    await settled(phone);
    assert.equal(phone.stanzas.items.filter((s) => s.toString().includes('from my phone')).length, 0, 'the phone got no copy of its own message');
    // After disable, no more copies.
    await desk.xmpp.iqCaller.set(xml('disable', { xmlns: 'urn:xmpp:carbons:2' }));
    await phone.xmpp.send(chat(bob!, 'p2', body('second')));
    await b.stanzas.take((s) => s.getChildText('body') === 'second');
    await assert.rejects(
      desk.stanzas.take((s) => s.toString().includes('second'), 300),
      /timed out/,
    );
  });
});
