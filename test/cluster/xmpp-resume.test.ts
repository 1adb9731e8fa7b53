/**
 * XEP-0198 resumption on any node of a cluster: two Herald nodes (separate processes) sharing
 * Redis and the PostgreSQL IM store, each with its XMPP TCP port. slixmpp (Debian's
 * python3-slixmpp) loses its connection to node A and resumes on node B, where every message sent
 * meanwhile arrives once and none is bounced to its sender; a resumption while node A still holds
 * the stream makes A let go; another user cannot take the session; an ended session's resumption
 * fails with the count of stanzas the server handled; and after node A is killed, its session
 * resumes on node B with nothing delivered twice.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { sleep } from '../helpers/server.js';
import { type Slixmpp, slixmpp } from '../helpers/slixmpp.js';
import { plain, type RawTcpXmpp, rawTcpPort, STREAM_HEADER } from '../helpers/xmpp.js';
import { useNodes } from './nodes.js';
import { dropSchema, SHARED_PG_URL, testSchema } from './postgres.js';
import { freePort } from './redis.js';

const SM = 'urn:xmpp:sm:3';

void describe('cluster: XMPP stream management resumed on another node', { timeout: 600_000 }, () => {
  const schema = testSchema('xmppsm');
  const ports: number[] = [];
  const args = ['--dev', '--database', SHARED_PG_URL, '--database.schema', schema, '--database.pool-size', '4', '--im.presence-grace-ms', '100'];
  const nodeArgs = async (i: number): Promise<string[]> => {
    ports[i] = await freePort();
    return ['--xmpp.tcp-port', String(ports[i])];
  };
  const cluster = useNodes<{ kill(): void }>({ tag: 'xmppsm', args, nodeArgs, cleanup: () => dropSchema(schema) });
  const raws: RawTcpXmpp[] = [];
  const timers: NodeJS.Timeout[] = [];
  const slix: Slixmpp[] = [];
  let n = 0;
  const names = (...base: string[]): string[] => {
    n++;
    return base.map((b) => `${b}${n}`);
  };

  /** A raw stream to node `i` authenticated as `user`, at the post-auth features. */
  const authed = async (i: number, user: string): Promise<RawTcpXmpp> => {
    const c = await rawTcpPort(ports[i]!);
    raws.push(c);
    c.send(STREAM_HEADER);
    await c.until(/<\/stream:features>/, 10_000);
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain(user)}</auth>`);
    await c.until(/<success/, 10_000);
    c.send(STREAM_HEADER);
    await c.until(/<sm xmlns="urn:xmpp:sm:3"\/><\/stream:features>/, 10_000);
    return c;
  };
  /** Bound and available on node `i`, with resumable stream management when `resume`: the resumption id. */
  const online = async (i: number, user: string, resume: boolean): Promise<{ c: RawTcpXmpp; id: string }> => {
    const c = await authed(i, user);
    c.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>raw</resource></bind></iq>");
    await c.until(/<\/bind><\/iq>/, 10_000);
    let id = '';
    if (resume) {
      c.send(`<enable xmlns='${SM}' resume='true'/>`);
      id = /<enabled xmlns="urn:xmpp:sm:3" id="([^"]+)"/.exec(await c.until(/<enabled [^>]*\/>/, 10_000))![1]!;
    }
    c.send('<presence/>');
    await c.until(/<presence xmlns="jabber:client" from="[^"]+" to="[^"]+\/raw"\/>/, 10_000);
    // Whitespace keep-alives: the nodes ping a silent TCP client (every 300 ms here) and drop it.
    timers.push(setInterval(() => c.send(' '), 100));
    return { c, id };
  };
  const chat = (c: RawTcpXmpp, to: string, text: string): void =>
    c.send(`<message to='${to}@localhost' type='chat' id='${text}'><body>${text}</body></message>`);
  /** Messages and failed resumptions slixmpp reported and the test has not taken. */
  const untaken = (s: Slixmpp): string[] => s.events.items.filter((e) => e.event === 'message' || e.event === 'sm_failed').map((e) => e.body ?? e.event);

  afterEach(async () => {
    for (const t of timers.splice(0)) clearInterval(t);
    for (const c of raws.splice(0)) c.close();
    for (const s of slix.splice(0)) {
      s.command('end');
      await s.take('ended', 5_000).catch(() => undefined);
      s.proc.kill();
    }
  });

  test('slixmpp drops its connection to node A and resumes on node B: what was sent meanwhile arrives once, nothing bounces', async () => {
    const [alice, bob] = names('slixalice', 'slixbob');
    const { c: b } = await online(1, bob!, false);
    const a = slixmpp(ports[0]!, `${alice}@localhost/slix`);
    slix.push(a);
    const enabled = await a.take('enabled');
    assert.ok(enabled.id, 'resumable: the server gave a resumption id');
    await a.take('session_start');
    chat(b, alice!, 'm1');
    assert.equal((await a.take('message')).body, 'm1');

    a.command('drop');
    await a.take('disconnected');
    chat(b, alice!, 'm2');
    chat(b, alice!, 'm3');
    // Node A holds m2 and m3 for the detached session, unacknowledged.
    await sleep(500);

    a.command(`reconnect ${ports[1]}`);
    const resumed = await a.take('resumed');
    assert.equal(resumed.id, enabled.id, 'the same stream, resumed on node B');
    assert.deepEqual([(await a.take('message')).body, (await a.take('message')).body], ['m2', 'm3']);

    a.command(`send ${bob}@localhost after resume`);
    await b.until(/<body>after resume<\/body>/, 10_000);
    await sleep(300);
    assert.deepEqual(untaken(a), [], 'no message twice, no failed resumption');
    assert.doesNotMatch(b.received(), /type="error"/, 'no message bounced to its sender');
  });

  test('a resumption on node B while node A still holds the stream: A lets go; another user cannot take the session', async () => {
    const [alice, mallory] = names('alice', 'mallory');
    const { c: old, id } = await online(0, alice!, true);

    const m = await authed(1, mallory!);
    m.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    const refused = await m.until(/<failed [^>]*>/, 10_000);
    assert.match(refused, /<failed xmlns="urn:xmpp:sm:3"><item-not-found/, 'refused like an unknown id, without h');
    await sleep(200);
    assert.doesNotMatch(old.received(), /<\/stream:stream>/, "node A kept alice's stream");

    const c = await authed(1, alice!);
    c.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    // The server handled one stanza of alice's (her presence).
    await c.until(new RegExp(`<resumed xmlns="urn:xmpp:sm:3" previd="${id.replace(/[.]/g, '\\.')}" h="1"/>`), 10_000);
    await old.closed;
    c.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    await c.until(/<iq [^>]*type="result" id="p1"/, 10_000);
  });

  test('the resumption of a session that ended on node A fails on node B with how far the server got', async () => {
    const [alice] = names('alice');
    const { c: old, id } = await online(0, alice!, true);
    old.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq><iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>");
    await old.until(/id="p2"/, 10_000);
    old.send('</stream:stream>');
    await old.closed;
    await sleep(200);

    const c = await authed(1, alice!);
    c.send(`<resume xmlns='${SM}' previd='${id}' h='0'/>`);
    // Presence and two pings.
    await c.until(/<failed xmlns="urn:xmpp:sm:3" h="3"><item-not-found/, 10_000);
  });

  test('node A is killed: its slixmpp session resumes on node B and nothing is delivered twice', async () => {
    const [alice, bob] = names('slixalice', 'slixbob');
    const { c: b } = await online(1, bob!, false);
    const a = slixmpp(ports[0]!, `${alice}@localhost/slix`);
    slix.push(a);
    const enabled = await a.take('enabled');
    await a.take('session_start');
    chat(b, alice!, 'c1');
    chat(b, alice!, 'c2');
    assert.deepEqual([(await a.take('message')).body, (await a.take('message')).body], ['c1', 'c2']);
    // slixmpp acknowledges on the server's requests; node A records it.
    await sleep(500);

    await cluster.a.stop('SIGKILL');
    await a.take('disconnected');
    chat(b, alice!, 'c3');
    await sleep(300);

    a.command(`reconnect ${ports[1]}`);
    const resumed = await a.take('resumed', 20_000);
    assert.equal(resumed.id, enabled.id);
    assert.equal((await a.take('message')).body, 'c3');
    await sleep(500);
    assert.deepEqual(untaken(a), [], 'no message twice, no failed resumption');
    assert.doesNotMatch(b.received(), /type="error"/, 'no message bounced to its sender');
  });
});
