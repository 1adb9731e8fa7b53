/**
 * XEP-0198 stream management on the XMPP front: @xmpp/client enables it and acknowledges what
 * it receives (which acknowledges the user's inbox); a raw client's dropped stream is resumed
 * with what it missed sent again; an unknown or expired resumption fails with the count of
 * stanzas handled, and nothing unacknowledged is lost: it comes back by offline delivery.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { HeraldServer } from '../../src/index.js';
import { ImWs } from '../helpers/im-clients.js';
import { startServer, waitFor, wsUrl } from '../helpers/server.js';
import { connectXmpp, plain, type RawXmpp, rawTcp, STREAM_HEADER } from '../helpers/xmpp.js';

const SM = 'urn:xmpp:sm:3';

describe('XMPP stream management (XEP-0198)', () => {
  let server: HeraldServer;
  let dir: string;
  const open: Array<{ close(): void | Promise<void> }> = [];
  let n = 0;
  const names = (...base: string[]): string[] => {
    n++;
    return base.map((b) => `${b}${n}`);
  };
  /** A raw TCP stream authenticated as `user`, at the post-auth features (bind not yet done). */
  const authed = async (user: string): Promise<RawXmpp> => {
    const c = await rawTcp(server);
    open.push(c);
    c.send(STREAM_HEADER);
    await c.until(/<\/stream:features>/);
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain(user)}</auth>`);
    await c.until(/<success/);
    c.send(STREAM_HEADER);
    await c.until(/<sm xmlns="urn:xmpp:sm:3"\/><\/stream:features>/);
    return c;
  };
  /** Bound, resumable stream management enabled, available: returns the resumption id. */
  const managed = async (user: string): Promise<{ c: RawXmpp; id: string }> => {
    const c = await authed(user);
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>sm</resource></bind></iq>");
    await c.until(/<\/bind><\/iq>/);
    c.send(`<enable xmlns='${SM}' resume='true'/>`);
    const id = /<enabled xmlns="urn:xmpp:sm:3" id="([^"]+)" resume="true" max="\d+"\/>/.exec(await c.until(/<enabled [^>]*\/>/))![1]!;
    c.send('<presence/>');
    await c.until(/<presence xmlns="jabber:client" from="[^"]+" to="[^"]+\/sm"\/>/);
    return { c, id };
  };
  const native = async (user: string): Promise<ImWs> => {
    const c = await ImWs.connect(wsUrl(server), user);
    open.push(c);
    return c;
  };
  const acked = async (user: string): Promise<number> => {
    const probe = await ImWs.connect(wsUrl(server), user, { subscribe: false });
    try {
      return (await probe.ok('im.sync', { limit: 1 })).acked;
    } finally {
      await probe.close();
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-sm-'));
    server = await startServer({ dev: true, xmpp: { tcpPort: 0, resumeTimeoutMs: 1_000 }, im: { storePath: join(dir, 'im.db'), presenceGraceMs: 50 } });
  });
  afterEach(async () => {
    for (const c of open.splice(0)) await c.close();
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('@xmpp/client enables it; its acknowledgements acknowledge the inbox', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await connectXmpp(server, { username: alice!, transport: 'tcp' });
    open.push({ close: () => a.stop() });
    const sm = (a.xmpp as unknown as { streamManagement: { enabled: boolean; id: string } }).streamManagement;
    await waitFor(() => sm.enabled, 3_000, 'stream management enabled');
    assert.ok(sm.id, 'resumable');
    await a.xmpp.send(xml('presence'));
    const b = await native(bob!);
    await b.ok('im.send', { to: alice, clientId: 'count me', data: { text: 'count me' } });
    assert.equal((await a.stanzas.take((s) => s.is('message'))).getChildText('body'), 'count me');
    const deadline = Date.now() + 3_000;
    while ((await acked(alice!)) < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await acked(alice!), 1);
  });

  test('a dropped stream is resumed: the client says what it got, the rest comes again, nothing is acknowledged before', async () => {
    const [alice, bob] = names('alice', 'bob');
    const { c, id } = await managed(alice!);
    const b = await native(bob!);
    await b.ok('im.send', { to: alice, clientId: 'first', data: { text: 'first' } });
    await c.until(/<body>first<\/body>/);
    await c.until(/<r xmlns="urn:xmpp:sm:3"\/>/);
    // The client drops without acknowledging anything; another message arrives meanwhile.
    c.close();
    await b.ok('im.send', { to: alice, clientId: 'second', data: { text: 'second' } });
    assert.equal(await acked(alice!), 0, "nothing acknowledged without the client's ack");
    const d = await authed(alice!);
    d.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    const text = await d.until(/<body>second<\/body>/);
    assert.match(text, /<resumed xmlns="urn:xmpp:sm:3" previd="[^"]+" h="1"\/>/, 'h counts the presence the server handled');
    assert.ok(text.indexOf('<body>first</body>') < text.indexOf('<body>second</body>'), 'unacknowledged stanzas come again in order');
    // Acknowledge everything sent: presence echo, first, second.
    const sent = (text.slice(text.indexOf('<resumed')).match(/<(message|presence|iq) /g) ?? []).length;
    d.send(`<a xmlns='${SM}' h='${sent}'/>`);
    const deadline = Date.now() + 3_000;
    while ((await acked(alice!)) < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.equal(await acked(alice!), 2);
    d.send(`<r xmlns='${SM}'/>`);
    await d.until(/<a xmlns="urn:xmpp:sm:3" h="1"\/>/);
  });

  test('an unknown resumption id fails; an expired one fails with h, and its unacknowledged messages come by offline delivery', async () => {
    const [alice, bob] = names('alice', 'bob');
    const x = await authed(alice!);
    x.send(`<resume xmlns='${SM}' previd='nope' h='0'/>`);
    await x.until(/<failed xmlns="urn:xmpp:sm:3"><item-not-found xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/><\/failed>/);
    const { c, id } = await managed(alice!);
    const b = await native(bob!);
    await b.ok('im.send', { to: alice, clientId: 'kept', data: { text: 'kept' } });
    await c.until(/<body>kept<\/body>/);
    c.close();
    await new Promise((r) => setTimeout(r, 1_600));
    const d = await authed(alice!);
    d.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    await d.until(/<failed xmlns="urn:xmpp:sm:3" h="1"><item-not-found /);
    d.send("<iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await d.until(/<\/bind><\/iq>/);
    d.send('<presence/>');
    const text = await d.until(/<body>kept<\/body>/);
    assert.match(text, /<delay xmlns="urn:xmpp:delay"/);
  });

  test('an ack for more stanzas than were sent ends the stream with undefined-condition', async () => {
    const [alice] = names('alice');
    const { c } = await managed(alice!);
    c.send(`<a xmlns='${SM}' h='1000'/>`);
    await c.until(/<stream:error><undefined-condition xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await c.closed;
  });
});
