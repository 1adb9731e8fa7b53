/**
 * Message archive management (XEP-0313) over im.history with @xmpp/client: RSM paging both
 * ways, time filters, messages from native users and edits as they are now, and the errors for
 * another user's archive, conversations of others and malformed queries.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { Element } from '@xmpp/xml';
import { ImWs } from '../helpers/im-clients.js';
import { useImServer } from '../helpers/im-fixture.js';
import type { XmppHandle } from '../helpers/xmpp.js';

const MAM = 'urn:xmpp:mam:2';
const RSM = 'http://jabber.org/protocol/rsm';

/** A MAM query payload. */
function query(queryid: string, fields: Record<string, string>, rsm: Record<string, string | undefined> = {}): Element {
  const form = xml(
    'x',
    { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, MAM)),
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))),
  );
  const set = xml('set', { xmlns: RSM }, ...Object.entries(rsm).map(([k, v]) => xml(k, {}, ...(v === undefined ? [] : [v]))));
  return xml('query', { xmlns: MAM, queryid }, form, set);
}

describe('XMPP message archive (XEP-0313)', () => {
  const fx = useImServer('xmpp-mam', () => ({ dev: true, xmpp: { tcpPort: 0 } }));
  const { names } = fx;
  const native = (user: string): Promise<ImWs> => fx.connect(user);
  const xmppUser = (username: string): Promise<XmppHandle> => fx.xmpp({ username });
  /** Run a query; the results (in order) and the `<fin/>`. */
  const archive = async (c: XmppHandle, q: Element, to?: string): Promise<{ results: Element[]; fin: Element }> => {
    const queryid = q.attrs.queryid as string;
    const res = await c.xmpp.iqCaller.request(xml('iq', { type: 'set', to }, q));
    const fin = res.getChild('fin', MAM)!;
    const results = c.stanzas.items.filter((s) => s.getChild('result', MAM)?.attrs.queryid === queryid);
    return { results, fin };
  };
  const bodyOf = (r: Element): string | undefined =>
    r.getChild('result')?.getChild('forwarded', 'urn:xmpp:forward:0')?.getChild('message')?.getChildText('body') ?? undefined;
  const condition = (err: unknown): string | undefined => (err as { condition?: string }).condition;

  test('pages a direct conversation forward with after and backward from the end, edits applied, native messages included', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await xmppUser(alice!);
    const b = await native(bob!);
    for (const t of ['one', 'two', 'three']) await a.xmpp.send(xml('message', { type: 'chat', to: `${bob}@localhost`, id: t }, xml('body', {}, t)));
    await a.xmpp.iqCaller.get(xml('ping', 'urn:xmpp:ping'));
    const four = await b.ok('im.send', { to: alice, clientId: 'n4', data: { text: 'for' } });
    await b.ok('im.edit', { message: four.id, data: { text: 'four' } });
    await b.ok('im.send', { to: alice, clientId: 'n5', data: { text: 'five' } });

    const p1 = await archive(a, query('q1', { with: `${bob}@localhost` }, { max: '2' }));
    assert.deepEqual(p1.results.map(bodyOf), ['one', 'two']);
    assert.equal(p1.fin.attrs.complete, undefined);
    const first = p1.results[0]!;
    const fwd = first.getChild('result')!.getChild('forwarded', 'urn:xmpp:forward:0')!;
    assert.match(String(fwd.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp), /^\d{4}-\d\d-\d\dT/);
    assert.equal(fwd.getChild('message')?.attrs.from, `${alice}@localhost`);
    assert.equal(fwd.getChild('message')?.attrs.to, `${bob}@localhost`);
    assert.equal(first.attrs.from, `${alice}@localhost`);
    const last = p1.fin.getChild('set', RSM)!.getChildText('last')!;
    assert.equal(last, p1.results[1]!.getChild('result')?.attrs.id);

    const p2 = await archive(a, query('q2', { with: `${bob}@localhost` }, { max: '2', after: last }));
    assert.deepEqual(p2.results.map(bodyOf), ['three', 'four'], 'the edit is applied and not listed itself');
    const p3 = await archive(a, query('q3', { with: `${bob}@localhost` }, { max: '2', after: p2.fin.getChild('set', RSM)!.getChildText('last')! }));
    assert.deepEqual(p3.results.map(bodyOf), ['five']);
    assert.equal(p3.fin.attrs.complete, 'true');
    assert.equal(p3.results[0]!.getChild('result')?.attrs.id, (await b.ok('im.history', { conversation: four.conversation, limit: 1 })).messages[0].id);

    const end = await archive(a, query('q4', { with: `${bob}@localhost` }, { max: '2', before: undefined }));
    assert.deepEqual(end.results.map(bodyOf), ['four', 'five'], 'an empty <before/> is the last page, oldest first');
    const prev = await archive(a, query('q5', { with: `${bob}@localhost` }, { max: '10', before: end.fin.getChild('set', RSM)!.getChildText('first')! }));
    assert.deepEqual(prev.results.map(bodyOf), ['one', 'two', 'three']);
    assert.equal(prev.fin.attrs.complete, 'true');

    const future = await archive(a, query('q6', { with: `${bob}@localhost`, start: new Date(Date.now() + 60_000).toISOString() }));
    assert.equal(future.results.length, 0);
    const none = await archive(a, query('q7', { with: `nobody-${fx.n}@localhost` }));
    assert.equal(none.results.length, 0);
    assert.equal(none.fin.attrs.complete, 'true');
    const form = await a.xmpp.iqCaller.get(xml('query', { xmlns: MAM }));
    assert.deepEqual(
      form
        .getChild('x', 'jabber:x:data')
        ?.getChildren('field')
        .map((f) => f.attrs.var),
      ['FORM_TYPE', 'with', 'start', 'end'],
    );
  });

  test("another user's archive is forbidden; ids of others' conversations are item-not-found; malformed queries get bad-request", async () => {
    const [alice, bob, carol, dave] = names('alice', 'bob', 'carol', 'dave');
    const a = await xmppUser(alice!);
    await native(bob!);
    const c = await native(carol!);
    await native(dave!);
    const secret = await c.ok('im.send', { to: dave, clientId: 'c1', data: { text: 'secret' } });
    await assert.rejects(archive(a, query('f1', { with: `${carol}@localhost` }), `${bob}@localhost`), (e) => condition(e) === 'forbidden');
    await assert.rejects(archive(a, query('f2', { with: `${dave}@localhost` }), `${carol}@localhost/web`), (e) => condition(e) === 'forbidden');
    await assert.rejects(archive(a, query('f3', { with: `${dave}@localhost` }, { after: secret.id })), (e) => condition(e) === 'item-not-found');
    await assert.rejects(archive(a, query('f4', { with: `${dave}@localhost` }, { before: secret.id })), (e) => condition(e) === 'item-not-found');
    await assert.rejects(archive(a, query('f5', {})), (e) => condition(e) === 'feature-not-implemented');
    await assert.rejects(archive(a, query('f6', { with: 'not a jid@@' })), (e) => condition(e) === 'jid-malformed');
    await assert.rejects(archive(a, query('f7', { with: `${bob}@localhost` }, { max: '-1' })), (e) => condition(e) === 'bad-request');
    await assert.rejects(archive(a, query('f8', { with: `${bob}@localhost`, start: 'yesterday' })), (e) => condition(e) === 'bad-request');
    await assert.rejects(archive(a, query('f9', { with: `${bob}@localhost`, ids: 'x' })), (e) => condition(e) === 'feature-not-implemented');
    await assert.rejects(archive(a, query('f10', { with: `${bob}@localhost` }, { after: 'a', before: 'b' })), (e) => condition(e) === 'bad-request');
    await assert.rejects(archive(a, query('x'.repeat(200), { with: `${bob}@localhost` })), (e) => condition(e) === 'bad-request');
    assert.equal(a.stanzas.items.filter((s) => s.getChild('result', MAM)).length, 0, 'nothing of carol and dave leaked');
    // The stream goes on.
    await a.xmpp.iqCaller.get(xml('ping', 'urn:xmpp:ping'));
  });
});
