/**
 * strophe.js (its Node build: ws + xmldom) against the XMPP front over WebSocket (RFC 7395):
 * log in, bind, session, roster, presence, and a chat with an @xmpp/client user over TCP.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import { $iq, $msg, $pres, Strophe } from 'strophe.js';
import type { HeraldServer } from '../../src/index.js';
import { Inbox } from '../helpers/clients.js';
import { startServer } from '../helpers/server.js';
import { connectXmpp, xmppWsUrl } from '../helpers/xmpp.js';

type StropheConnection = InstanceType<typeof Strophe.Connection>;

/** A connected strophe.js client with the stanzas it received. */
async function strophe(server: HeraldServer, jid: string, password: string): Promise<{ conn: StropheConnection; stanzas: Inbox<Element> }> {
  const conn = new Strophe.Connection(xmppWsUrl(server));
  const stanzas = new Inbox<Element>();
  conn.addHandler(
    (el: Element) => {
      stanzas.put(el);
      return true;
    },
    null,
    null,
    null,
    null,
    null,
  );
  await new Promise<void>((resolve, reject) => {
    void conn.connect(jid, password, (status: number, condition?: string) => {
      if (status === Strophe.Status.CONNECTED) resolve();
      else if (status === Strophe.Status.AUTHFAIL || status === Strophe.Status.CONNFAIL) reject(new Error(`strophe: ${condition ?? status}`));
    });
  });
  return { conn, stanzas };
}

function disconnected(conn: StropheConnection): Promise<void> {
  return new Promise((resolve) => {
    conn.connect_callback = (status: number) => {
      if (status === Strophe.Status.DISCONNECTED) resolve();
    };
    conn.disconnect('done');
  });
}

describe('XMPP front with strophe.js', () => {
  let server: HeraldServer;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-strophe-'));
    server = await startServer({ dev: true, xmpp: { tcpPort: 0 }, im: { storePath: join(dir, 'im.db') } });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('logs in over WebSocket, reads its roster, and chats with an @xmpp/client user over TCP', async () => {
    const b = await connectXmpp(server, { username: 'sbob', transport: 'tcp' });
    await b.xmpp.send(xml('presence'));
    // Sbob lets salice see his presence (Herald shares it between mutual contacts only).
    await b.xmpp.send(xml('presence', { to: 'salice@localhost', type: 'subscribed' }));
    await b.xmpp.iqCaller.get(xml('ping', 'urn:xmpp:ping'));
    const { conn, stanzas } = await strophe(server, 'salice@localhost', 'any');
    assert.match(conn.jid, /^salice@localhost\/herald-[0-9a-f]+$/);
    const roster = await new Promise<Element>((resolve, reject) =>
      conn.sendIQ($iq({ type: 'set' }).c('query', { xmlns: 'jabber:iq:roster' }).c('item', { jid: 'sbob@localhost' }), resolve, reject),
    );
    assert.equal(roster.getAttribute('type'), 'result');
    const list = await new Promise<Element>((resolve, reject) => conn.sendIQ($iq({ type: 'get' }).c('query', { xmlns: 'jabber:iq:roster' }), resolve, reject));
    assert.deepEqual(
      Array.from(list.getElementsByTagName('item')).map((i) => i.getAttribute('jid')),
      ['sbob@localhost'],
    );
    conn.send($pres().c('show').t('away'));
    // sbob is online: salice, his mutual contact now, gets his presence when she becomes available.
    const bobPresence = await stanzas.take((s) => s.tagName === 'presence' && s.getAttribute('from') === 'sbob@localhost');
    assert.equal(bobPresence.getAttribute('type'), null);
    conn.send($msg({ to: 'sbob@localhost', type: 'chat' }).c('body').t('hello from strophe'));
    const got = await b.stanzas.take((s) => s.is('message'));
    assert.equal(got.getChildText('body'), 'hello from strophe');
    assert.equal(got.attrs.from, 'salice@localhost');
    await b.xmpp.send(xml('message', { to: 'salice@localhost', type: 'chat' }, xml('body', {}, 'hello strophe')));
    const back = await stanzas.take((s) => s.tagName === 'message');
    assert.equal(back.getElementsByTagName('body')[0]?.textContent, 'hello strophe');
    assert.equal(back.getElementsByTagName('stanza-id')[0]?.getAttribute('by'), 'salice@localhost');
    await disconnected(conn);
    await b.stop();
  });
});
