/**
 * The XMPP front against hand-written input over raw TCP and WebSocket connections: RFC 7395
 * framing (text and binary messages, with and without the `xmpp` subprotocol), the older
 * `<stream:stream>` WebSocket framing with legacy `jabber:iq:auth`, and every kind of bad input
 * answered with the stream or stanza error RFC 6120 names, the node unharmed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect as tcpConnect } from 'node:net';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import type { HeraldServer } from '../../src/index.js';
import { startServer, waitFor } from '../helpers/server.js';
import { connectXmpp, plain, type RawXmpp, rawTcp, rawTcpBound, rawWs, STREAM_HEADER, xmppTcpPort } from '../helpers/xmpp.js';

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const OPEN = `<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`;
const streamError = (condition: string): RegExp => new RegExp(`<stream:error[^>]*><${condition} xmlns="urn:ietf:params:xml:ns:xmpp-streams"/>`);

describe('XMPP front: framing and bad input', () => {
  let server: HeraldServer;
  let dir: string;
  const conns: RawXmpp[] = [];
  const tcp = async (): Promise<RawXmpp> => {
    const c = await rawTcp(server);
    conns.push(c);
    return c;
  };
  const ws = async (protocols?: string[], binary?: boolean): Promise<RawXmpp & { protocol: string }> => {
    const c = await rawWs(server, protocols, binary);
    conns.push(c);
    return c;
  };
  /** A TCP stream authenticated and bound as `user`. */
  const boundTcp = async (user: string): Promise<RawXmpp> => {
    const c = await rawTcpBound(server, user);
    conns.push(c);
    return c;
  };
  /** The node still serves: a real client logs in. */
  const stillServes = async (): Promise<void> => {
    const c = await connectXmpp(server, { username: 'healthy', transport: 'tcp' });
    await c.stop();
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-bad-'));
    server = await startServer({
      dev: true,
      xmpp: { tcpPort: 0, maxStanzaSize: 4096 },
      timing: { connectTimeoutMs: 10_000 },
      im: { storePath: join(dir, 'im.db') },
    });
  });
  afterEach(() => {
    for (const c of conns.splice(0)) c.close();
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('over TCP a client that sends its next request on the first bytes of each answer (tsung) logs in: header and features arrive together', async () => {
    const socket = tcpConnect(await xmppTcpPort(server), '127.0.0.1');
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    const steps = [
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain('eager')}</auth>`,
      STREAM_HEADER,
      "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>tsung</resource></bind></iq>",
    ];
    let text = '';
    const done = new Promise<void>((resolve, reject) => {
      socket.on('data', (d: Buffer) => {
        text += d.toString('utf8');
        if (/<stream:error/.test(text)) reject(new Error(text));
        else if (/<jid>[^<]+\/tsung<\/jid>/.test(text)) resolve();
        else {
          const next = steps.shift();
          if (next !== undefined) socket.write(next);
        }
      });
      socket.once('close', () => reject(new Error(`closed: ${text}`)));
    });
    socket.write(STREAM_HEADER);
    try {
      await done;
    } finally {
      socket.destroy();
    }
  });

  test('over TCP the stream restart pipelined after <auth/> in the same write (and the bind after it) is read as the new stream', async () => {
    const c = await tcp();
    c.send(STREAM_HEADER);
    await c.until(/<\/stream:features>/);
    const auth = `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain('pipeliner')}</auth>`;
    const bind = "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>pipe</resource></bind></iq>";
    c.send(`${auth}${STREAM_HEADER}${bind}`);
    const text = await c.until((t) => /<jid>[^<]+\/pipe<\/jid>/.test(t) || /<stream:error/.test(t));
    assert.doesNotMatch(text, /<stream:error/);
    assert.equal(text.match(/<stream:stream /g)?.length, 2, 'a second stream header: the restart was read');
  });

  test('over TCP a restart pipelined after a failing <auth/> belongs to the old stream, which it breaks: SASL failure, then not-well-formed', async () => {
    const c = await tcp();
    c.send(STREAM_HEADER);
    await c.until(/<\/stream:features>/);
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='NOPE'>x</auth>${STREAM_HEADER}`);
    const text = await c.until(/<\/stream:stream>/);
    assert.match(text, /<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><invalid-mechanism\/>.*<\/failure><stream:error[^>]*><not-well-formed /);
    await stillServes();
  });

  test('RFC 7395: <open/> is answered with <open/> and features; <close/> with <close/> and the socket closes', async () => {
    const c = await ws();
    assert.equal(c.protocol, 'xmpp');
    c.send(OPEN);
    const text = await c.until(/<\/stream:features>/);
    assert.match(text, /^<open xmlns="urn:ietf:params:xml:ns:xmpp-framing" from="localhost" id="[0-9a-f]+" version="1.0" xml:lang="en"\/>/);
    assert.match(
      text,
      /<stream:features xmlns:stream="http:\/\/etherx.jabber.org\/streams"><mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>PLAIN<\/mechanism>/,
    );
    c.send(`<close xmlns='${FRAMING}'/>`);
    await c.until(/<close xmlns="urn:ietf:params:xml:ns:xmpp-framing"\/>$/);
    await c.closed;
  });

  test('RFC 7395 over binary messages and without a subprotocol: log in, bind, ping', async () => {
    const c = await ws([], true);
    assert.equal(c.protocol, '');
    c.send(OPEN);
    await c.until(/<\/stream:features>/);
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain('binuser')}</auth>`);
    await c.until(/<success xmlns="urn:ietf:params:xml:ns:xmpp-sasl"\/>/);
    c.send(OPEN);
    await c.until(/<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"\/><session xmlns="urn:ietf:params:xml:ns:xmpp-session"><optional\/><\/session>/);
    c.send("<iq type='set' id='b1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    await c.until(/<jid>binuser@localhost\/herald-[0-9a-f]+<\/jid>/);
    c.send("<iq type='get' id='p1' xmlns='jabber:client'><ping xmlns='urn:xmpp:ping'/></iq>");
    await c.until(/<iq xmlns="jabber:client" type="result" id="p1"/);
  });

  test('the older <stream:stream> framing over WebSocket (tsung) with legacy jabber:iq:auth: log in, presence, message, close', async () => {
    const c = await ws([]);
    c.send("<?xml version='1.0'?><stream:stream to='localhost' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>");
    const header = /<stream:stream [^>]*>/.exec(await c.until(/<stream:stream [^>]*>/))![0];
    assert.doesNotMatch(header, /version=/, 'a version-less stream gets a version-less answer and no features');
    c.send("<iq type='get' id='auth1'><query xmlns='jabber:iq:auth'><username>tsung1</username></query></iq>");
    await c.until(/<iq xmlns="jabber:client" type="result" id="auth1"><query xmlns="jabber:iq:auth"><username\/><password\/><resource\/>/);
    c.send("<iq type='set' id='auth2'><query xmlns='jabber:iq:auth'><username>tsung1</username><password>pw</password><resource>tsung</resource></query></iq>");
    await c.until(/<iq xmlns="jabber:client" type="result" id="auth2"\/>/);
    c.send('<presence/>');
    await c.until(/<presence xmlns="jabber:client" from="tsung1@localhost" to="tsung1@localhost\/tsung"\/>/);
    c.send("<message to='tsung1@localhost' type='chat'><body>self</body></message>");
    c.send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>");
    await c.until(/id="p2"/);
    c.send('</stream:stream>');
    await c.until(/<\/stream:stream>$/);
    await c.closed;
  });

  for (const kind of ['tcp', 'websocket'] as const) {
    const open = async (): Promise<RawXmpp> => {
      const c = kind === 'tcp' ? await tcp() : await ws();
      c.send(kind === 'tcp' ? STREAM_HEADER : OPEN);
      await c.until(/<\/stream:features>/);
      return c;
    };

    test(`${kind}: malformed XML ends the stream with not-well-formed`, async () => {
      const c = await open();
      c.send('<message><body>oops</message>');
      await c.until(streamError('not-well-formed'));
      await c.closed;
      await stillServes();
    });

    test(`${kind}: billion laughs and entity tricks end the stream with restricted-xml`, async () => {
      const c = await open();
      c.send('<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><message><body>&lol2;</body></message>');
      await c.until(streamError('restricted-xml'));
      await c.closed;
      const d = await open();
      d.send('<message><body>&xxe;</body></message>');
      await d.until(streamError('restricted-xml'));
      const e = await open();
      e.send('<message><!-- comment --></message>');
      await e.until(streamError('restricted-xml'));
      await stillServes();
    });

    test(`${kind}: an oversized stanza ends the stream with policy-violation`, async () => {
      const c = await open();
      c.send(`<message><body>${'x'.repeat(5000)}</body></message>`);
      await c.until(streamError('policy-violation'));
      await c.closed;
    });

    test(`${kind}: a stanza before authentication ends the stream with not-authorized`, async () => {
      const c = await open();
      c.send("<message to='bob@localhost'><body>spam</body></message>");
      await c.until(streamError('not-authorized'));
      await c.closed;
    });
  }

  test('a stream header for another domain ends the stream with host-unknown, after our header', async () => {
    const c = await tcp();
    c.send(STREAM_HEADER.replace("to='localhost'", "to='evil.example'"));
    const text = await c.until(streamError('host-unknown'));
    assert.match(text, /^<\?xml version='1.0'\?><stream:stream /);
    await c.closed;
  });

  test('a wrong SASL mechanism and bad credentials are SASL failures; three failures end the stream', async () => {
    const c = await tcp();
    c.send(STREAM_HEADER);
    await c.until(/<\/stream:features>/);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='DIGEST-MD5'/>");
    await c.until(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><invalid-mechanism\/>/);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>!!notbase64</auth>");
    await c.until(/<incorrect-encoding\/>/);
    c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('bad user\0x').toString('base64')}</auth>`);
    await c.until(streamError('policy-violation'));
    await c.closed;
  });

  test('a forged from ends the stream with invalid-from', async () => {
    const c = await boundTcp('forger');
    c.send("<message from='victim@localhost/x' to='bob@localhost' type='chat'><body>it was me</body></message>");
    await c.until(streamError('invalid-from'));
    await c.closed;
  });

  test("a roster query to another user's JID is forbidden; an IQ without an id is bad-request; the stream goes on", async () => {
    const c = await boundTcp('nosy');
    c.send("<iq type='get' id='r1' to='victim@localhost'><query xmlns='jabber:iq:roster'/></iq>");
    await c.until(
      /<iq xmlns="jabber:client" type="error" id="r1" from="victim@localhost" to="nosy@localhost\/raw"><error type="auth"><forbidden xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/,
    );
    c.send("<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>");
    await c.until(/<bad-request xmlns="urn:ietf:params:xml:ns:xmpp-stanzas"\/>/);
    c.send("<iq type='get' id='r2'><query xmlns='jabber:iq:roster'/></iq>");
    await c.until(/<iq xmlns="jabber:client" type="result" id="r2"[^>]*><query xmlns="jabber:iq:roster"\/><\/iq>/);
  });

  test('past limits.maxConnections a TCP client gets resource-constraint and a WebSocket closes with 3007', async () => {
    const full = await startServer({ dev: true, xmpp: { tcpPort: 0 }, limits: { maxConnections: 1 }, im: { storePath: join(dir, 'full.db') } });
    try {
      const first = await rawTcp(full);
      first.send(STREAM_HEADER);
      await first.until(/<\/stream:features>/);
      const second = await rawTcp(full);
      await second.until(streamError('resource-constraint'));
      await second.closed;
      const third = new WebSocket(`${full.url().replace('http', 'ws')}/xmpp-websocket`, ['xmpp']);
      const code = await new Promise<number>((resolve) => third.once('close', resolve));
      assert.equal(code, 3007);
      first.close();
    } finally {
      await full.close();
    }
  });

  test('over TCP with xmpp.tcpPingIntervalMs a silent client is pinged with single-quoted attributes (what tsung answers); one that answers stays, one that does not is dropped', async () => {
    const pinging = await startServer({ dev: true, xmpp: { tcpPort: 0, tcpPingIntervalMs: 300 }, im: { storePath: join(dir, 'ping.db') } });
    const bind = async (user: string): Promise<RawXmpp> => {
      const c = await rawTcpBound(pinging, user);
      conns.push(c);
      return c;
    };
    const PING = /<iq xmlns='jabber:client' type='get' id='(ping-[0-9a-z]+)' from='localhost' to='([^']+)'><ping xmlns='urn:xmpp:ping'\/><\/iq>/g;
    try {
      const answering = await bind('pinged');
      const silent = await bind('silent');
      let answered = 0;
      await waitFor(
        () => {
          for (const [, id, to] of [...answering.received().matchAll(PING)].slice(answered)) {
            assert.equal(to, 'pinged@localhost/raw');
            answering.send(`<iq type='result' id='${id}' to='localhost'/>`);
            answered++;
          }
          return answered >= 3;
        },
        10_000,
        'three pings answered',
      );
      await silent.until(streamError('connection-timeout'), 5_000);
      await silent.closed;
      assert.doesNotMatch(answering.received(), /<stream:error/);
    } finally {
      await pinging.close();
    }
  });

  /** The keepalive timer of the server's end of the one TCP connection on `port`, ms until the next probe. */
  async function keepaliveTimerMs(port: number): Promise<number> {
    let ss = '';
    let timer: RegExpExecArray | null = null;
    // Right after a write the socket may show its retransmission timer instead; it settles at once.
    await waitFor(
      () => {
        ss = execFileSync('ss', ['-tnoH', 'state', 'established', `( src 127.0.0.1 and sport = :${port} )`], { encoding: 'utf8' });
        // ss prints the time left as `12min`, `24sec` or `2.664ms` (seconds and milliseconds).
        timer = /timer:\(keepalive,(?:(\d+)min|(\d+)sec|(?:(\d+)\.)?(\d+)ms),/.exec(ss);
        return timer !== null;
      },
      2_000,
      'a keepalive timer on the server socket',
    ).catch(() => assert.fail(`keepalive timer on the server's socket: ${ss}`));
    assert.ok(timer);
    const [, min, sec, secPart, ms] = timer as RegExpExecArray;
    return Number(min ?? 0) * 60_000 + (Number(sec ?? 0) + Number(secPart ?? 0)) * 1_000 + Number(ms ?? 0);
  }

  test('by default a silent TCP client is not pinged nor dropped: TCP keepalive on the host schedule watches its socket', async () => {
    const quiet = await startServer({ dev: true, xmpp: { tcpPort: 0 }, timing: { pingIntervalMs: 1_000 }, im: { storePath: join(dir, 'quiet.db') } });
    try {
      const c = await rawTcpBound(quiet, 'quiet');
      conns.push(c);
      // The server's end: keepalive on, first probe after the host's net.ipv4.tcp_keepalive_time
      // (not the WebSocket heartbeat's interval).
      const hostIdleMs = Number(readFileSync('/proc/sys/net/ipv4/tcp_keepalive_time', 'utf8')) * 1_000;
      const ms = await keepaliveTimerMs(await xmppTcpPort(quiet));
      // (ss shows long timers coarsely: the kernel's timer wheel rounds them to its slots.)
      assert.ok(ms > hostIdleMs / 2 && ms <= hostIdleMs, `first probe after the host's ${hostIdleMs} ms, was ${ms} ms`);
      // Two ping intervals of silence: no XEP-0199 ping, no stream error, still connected.
      const before = c.received().length;
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal(c.received().slice(before), '');
      c.send("<iq type='get' id='v1'><ping xmlns='urn:xmpp:ping'/></iq>");
      await c.until(/id="v1"/);
    } finally {
      await quiet.close();
    }
  });

  test('xmpp.tcpKeepAliveMs sets the first keepalive probe of a TCP stream', async () => {
    const probing = await startServer({ dev: true, xmpp: { tcpPort: 0, tcpKeepAliveMs: 3_000 }, im: { storePath: join(dir, 'probing.db') } });
    try {
      const c = await rawTcpBound(probing, 'probing');
      conns.push(c);
      const ms = await keepaliveTimerMs(await xmppTcpPort(probing));
      assert.ok(ms > 0 && ms <= 3_000, `first probe within xmpp.tcpKeepAliveMs, was ${ms} ms`);
    } finally {
      await probing.close();
    }
  });

  test('a client that does not authenticate in time gets connection-timeout', async () => {
    const quick = await startServer({ dev: true, xmpp: { tcpPort: 0 }, timing: { connectTimeoutMs: 300 }, im: { storePath: join(dir, 'quick.db') } });
    try {
      const c = await rawTcp(quick);
      c.send(STREAM_HEADER);
      await c.until(streamError('connection-timeout'), 5_000);
      await c.closed;
    } finally {
      await quick.close();
    }
  });
});
