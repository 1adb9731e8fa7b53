/**
 * Fuzzing the socket fronts of a real server (port 0): mutated native protocol frames over a
 * real `ws` client, mutated STOMP frames over a raw STOMP-over-WebSocket client, and mutated
 * XMPP stanzas over raw TCP. Every answer is documented (a reply or error frame with a
 * registered code, a documented close code, a well-formed stream error) and a fresh, valid
 * client is served afterwards.
 */
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { WebSocket } from 'ws';
import type { HeraldServer } from '../../../src/index.js';
import { ErrorCode } from '../../../src/protocol/codes.js';
import { parseDocument, XmlParser } from '../../../src/fronts/xmpp/parser.js';
import { startServer, wsUrl } from '../../helpers/server.js';
import { frame, RawStomp } from '../../helpers/stomp.js';
import { STREAM_HEADER, xmppTcpPort, xmppWsUrl } from '../../helpers/xmpp.js';
import { fuzzParams, mangledObject, mutated, WIRE_WEIGHT } from '../../helpers/fuzz.js';

/** Native close codes of docs/protocol.md (1000 normal, 1006 abnormal, 1007 invalid UTF-8 text, 1009 too big). */
const NATIVE_CLOSE = new Set([1000, 1005, 1006, 1007, 1009, 3001, 3002, 3005, 3006, 3007, 3500, 3501, 3503, 3504, 3505]);
/** STOMP close codes of docs/stomp.md. */
const STOMP_CLOSE = new Set([1000, 1005, 1006, 1007, 1009, 3001, 3002, 3003, 3006, 3500, 3501, 3503, 3504, 3505]);
const WIRE_ERRORS = new Set<number>(Object.values(ErrorCode));

const NATIVE_FRAMES = [
  '{"id":2,"cmd":"subscribe","channel":"news","since":"e:0"}',
  '{"id":3,"cmd":"publish","channel":"news","data":{"x":[1,2]}}',
  '{"id":4,"cmd":"history","channel":"news","limit":3,"reverse":true}',
  '{"id":5,"cmd":"unsubscribe","channel":"news"}',
  '{"id":6,"cmd":"refresh","token":"a.b.c"}',
  '{"id":7,"cmd":"im.send","to":"bob","clientId":"c1","data":"hi"}',
  '{"id":8,"cmd":"im.sync","after":0,"limit":5}',
  '{"id":9,"cmd":"im.history","conversation":"alice:bob","limit":2}',
  '{"id":10,"cmd":"im.group.create","title":"t","members":["bob"]}',
  '{"id":11,"cmd":"im.presence.set","status":"away"}',
  '{"id":12,"cmd":"rpc","method":"x","data":{}}',
  '{"id":13,"cmd":"connect","user":"again"}',
];

/** Valid params of every command a connected native client can send, to be mangled member by member. */
const COMMAND_PARAMS: Record<string, Record<string, unknown>> = {
  subscribe: { channel: 'news', since: 'e:0', last: 2 },
  unsubscribe: { channel: 'news' },
  publish: { channel: 'news', data: { x: 1 } },
  history: { channel: 'news', since: 'e:0', limit: 3, reverse: true },
  refresh: { token: 'a.b.c' },
  'im.send': { to: 'bob', clientId: 'c1', data: 'hi' },
  'im.sync': { after: 0, limit: 5 },
  'im.ack': { seq: 1 },
  'im.history': { conversation: 'd:alice:bob', before: 10, limit: 2 },
  'im.conversations': { limit: 5 },
  'im.read': { conversation: 'd:alice:bob', seq: 1 },
  'im.typing': { conversation: 'd:alice:bob' },
  'im.recall': { message: 'm1', clientId: 'c1' },
  'im.edit': { message: 'm1', data: 'x', clientId: 'c2' },
  'im.group.create': { title: 't', members: ['bob'] },
  'im.group.add': { group: 'g:1', members: ['carol'] },
  'im.group.remove': { group: 'g:1', user: 'bob' },
  'im.group.leave': { group: 'g:1' },
  'im.group.role': { group: 'g:1', user: 'bob', role: 'admin' },
  'im.group.members': { group: 'g:1' },
  'im.group.accept': { group: 'g:1' },
  'im.group.decline': { group: 'g:1' },
  'im.group.invites': {},
  'im.presence.set': { state: 'away', status: 'out' },
  'im.presence.get': { users: ['bob'] },
  'im.contacts.add': { user: 'bob' },
  'im.contacts.remove': { user: 'bob' },
  'im.contacts.list': {},
};

const STOMP_FRAMES = [
  frame('SUBSCRIBE', { id: '0', destination: '/topic/news' }),
  frame('SEND', { destination: '/topic/news', 'content-type': 'application/json' }, '{"a":1}'),
  frame('SEND', { destination: '/queue/work', receipt: 'r1' }, 'job'),
  frame('SUBSCRIBE', { id: '1', destination: '/queue/work', ack: 'client-individual' }),
  frame('ACK', { id: 'm-1' }),
  frame('NACK', { id: 'm-2' }),
  frame('BEGIN', { transaction: 't1' }),
  frame('COMMIT', { transaction: 't1' }),
  frame('UNSUBSCRIBE', { id: '0' }),
  frame('SEND', { destination: '/user/bob', 'content-length': '2' }, 'hi'),
  frame('SEND', { destination: '/exchange/x', 'content-type': 'text/plain' }, 'a\\cb'),
];

const XMPP_STANZAS = [
  "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHg=</auth>",
  "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>",
  "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
  "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>",
  "<message to='bob@localhost' type='chat' id='m1'><body>hi &amp; bye</body></message>",
  '<presence><show>away</show><status>out</status></presence>',
  "<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
  "<r xmlns='urn:xmpp:sm:3'/>",
  "<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
];

void describe('fuzz: socket fronts of a real server', () => {
  let server: HeraldServer;
  let runs = 0;
  before(async () => {
    server = await startServer({
      dev: true,
      limits: { maxMessageBytes: 4096, connectionsPerIpPerSecond: 0, maxConnectionsPerIp: 0, maxConnectionsPerUser: 0 },
      stomp: { maxFrameBytes: 2048 },
      xmpp: { tcpPort: 0, maxStanzaSize: 4096 },
    });
  });
  after(() => server.close());

  /** Open a native WebSocket, send `frames` then a ping, and collect everything until the ping's reply or the close. */
  async function nativeSession(frames: Array<string | Buffer>): Promise<{ received: string[]; closed?: number }> {
    const ws = new WebSocket(wsUrl(server));
    const received: string[] = [];
    const outcome = await new Promise<{ closed?: number; pong?: boolean }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer; received ${received.join(' | ').slice(0, 500)}`)), 10_000);
      const done = (o: { closed?: number; pong?: boolean }): void => {
        clearTimeout(timer);
        resolve(o);
      };
      ws.on('error', () => undefined);
      ws.on('close', (code) => done({ closed: code }));
      ws.on('message', (data) => {
        const text = data.toString();
        received.push(text);
        if (/^\{"id":424242,/.test(text)) done({ pong: true });
      });
      ws.once('open', () => {
        for (const f of frames) ws.send(f);
        ws.send('{"id":424242,"cmd":"ping"}');
      });
    });
    ws.terminate();
    if (outcome.closed !== undefined) assert.ok(NATIVE_CLOSE.has(outcome.closed), `close ${outcome.closed}`);
    for (const text of received) {
      const f = JSON.parse(text) as { type?: string; error?: { code: number; name: string } };
      if (f.error) assert.ok(WIRE_ERRORS.has(f.error.code) && /^HERALD_ERR_/.test(f.error.name), text);
      else assert.ok(typeof f.type === 'string' || 'result' in f, text);
    }
    return { received, closed: outcome.closed };
  }

  void test('native WebSocket: every command with mangled params is answered with a result or a registered error, never an internal one', async () => {
    const command = fc
      .constantFrom(...Object.keys(COMMAND_PARAMS))
      .chain((cmd) => fc.tuple(fc.constant(cmd), mangledObject(COMMAND_PARAMS[cmd]!), fc.nat({ max: 1000 })))
      .map(([cmd, params, id]) => JSON.stringify({ ...params, id, cmd }));
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 3 }), async (commands) => {
        const { received, closed } = await nativeSession(['{"id":1,"cmd":"connect","user":"alice"}', ...commands]);
        for (const text of received) assert.doesNotMatch(text, /HERALD_ERR_INTERNAL/, `${commands.join(' ')} → ${text}`);
        assert.ok(closed === undefined || closed !== 3002, `closed with 3002 after ${commands.join(' ')}`);
      }),
      fuzzParams(120, WIRE_WEIGHT),
    );
  });

  void test('native WebSocket: mutated frames get replies with registered error codes or a documented close', async () => {
    const frames = fc.array(
      fc.oneof(
        { arbitrary: mutated(NATIVE_FRAMES).map((s) => ({ text: s })), weight: 5 },
        { arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => ({ binary: Buffer.from(a) })), weight: 1 },
      ),
      { minLength: 1, maxLength: 4 },
    );
    const connectFrame = fc.oneof(
      { arbitrary: fc.constant('{"id":1,"cmd":"connect","user":"alice"}'), weight: 3 },
      { arbitrary: mutated(['{"id":1,"cmd":"connect","user":"alice","version":1}']), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(connectFrame, frames, async (hello, sent) => {
        await nativeSession([hello, ...sent.map((f) => ('text' in f ? f.text : f.binary))]);
        runs++;
      }),
      fuzzParams(120, WIRE_WEIGHT),
    );
    // A fresh client is served.
    const ws = new WebSocket(wsUrl(server));
    const reply = await new Promise<string>((resolve, reject) => {
      ws.on('error', reject);
      ws.on('message', (d) => {
        if (d.toString().includes('"id":2')) resolve(d.toString());
      });
      ws.once('open', () => {
        ws.send('{"id":1,"cmd":"connect","user":"after"}');
        ws.send('{"id":2,"cmd":"ping"}');
      });
    });
    assert.equal(reply, '{"id":2,"result":{}}');
    ws.terminate();
    assert.ok(runs > 0);
  });

  void test('STOMP: mutated frames get MESSAGE, RECEIPT or ERROR frames and a documented close', async () => {
    const messages = fc.array(
      fc.oneof(
        { arbitrary: mutated(STOMP_FRAMES), weight: 5 },
        { arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a).toString('latin1')), weight: 1 },
      ),
      { minLength: 1, maxLength: 4 },
    );
    const connectFrame = fc.oneof(
      { arbitrary: fc.constant(frame('CONNECT', { 'accept-version': '1.2', host: 'localhost', login: 'alice' })), weight: 3 },
      { arbitrary: mutated([frame('CONNECT', { 'accept-version': '1.2', host: 'localhost', login: 'alice', 'heart-beat': '0,0' })]), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(connectFrame, messages, async (hello, sent) => {
        const raw = await RawStomp.open(server);
        raw.send(hello);
        for (const m of sent) raw.send(Buffer.from(m, 'latin1'));
        raw.send(frame('DISCONNECT', { receipt: 'fuzz-end' }));
        const closed = await Promise.race([raw.closed, new Promise<undefined>((r) => setTimeout(r, 3_000))]);
        await raw.close();
        assert.ok(closed, 'the server ends the session (DISCONNECT or ERROR)');
        assert.ok(STOMP_CLOSE.has(closed.code), `close ${closed.code}`);
        for (const f of raw.frames.items) assert.ok(['CONNECTED', 'MESSAGE', 'RECEIPT', 'ERROR'].includes(f.command), f.command);
      }),
      fuzzParams(120, WIRE_WEIGHT),
    );
    const { raw } = await RawStomp.connected(server, { login: 'after' });
    await raw.close();
  });

  void test('XMPP over TCP: mutated stanzas get a well-formed stream back, ending in a stream error or a close', async () => {
    const port = await xmppTcpPort(server);
    const stanzas = fc.array(mutated(XMPP_STANZAS), { minLength: 1, maxLength: 4 });
    await fc.assert(
      fc.asyncProperty(stanzas, async (sent) => {
        const socket = tcpConnect(port, '127.0.0.1');
        socket.setEncoding('utf8');
        socket.on('error', () => undefined);
        let text = '';
        socket.on('data', (s: string) => (text += s));
        const closed = new Promise<boolean>((r) => socket.once('close', () => r(true)));
        await new Promise<void>((r) => socket.once('connect', () => r()));
        socket.write(STREAM_HEADER + sent.join('') + '</stream:stream>');
        await Promise.race([closed, new Promise((r) => setTimeout(r, 300))]);
        socket.destroy();
        // What the server wrote is a well-formed XMPP stream, whatever it was sent.
        const parser = new XmlParser({ maxStanzaSize: 1 << 20, maxDepth: 64, maxAttributes: 64 }, 'stream');
        const r = parser.write(text);
        assert.equal(r.error, undefined, `${r.error?.message}: ${text.slice(0, 400)}`);
        const err = r.events.find((e) => e.type === 'element' && e.element.name === 'stream:error');
        if (err?.type === 'element') assert.equal(err.element.elements()[0]?.ns, 'urn:ietf:params:xml:ns:xmpp-streams');
      }),
      fuzzParams(40, WIRE_WEIGHT),
    );
    // A fresh stream still gets its features.
    const socket = tcpConnect(port, '127.0.0.1');
    socket.setEncoding('utf8');
    let text = '';
    socket.on('data', (s: string) => (text += s));
    await new Promise<void>((r) => socket.once('connect', () => r()));
    socket.write(STREAM_HEADER);
    const deadline = Date.now() + 3_000;
    while (!text.includes('stream:features') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    socket.destroy();
    assert.match(text, /<stream:features/);
  });

  void test('XMPP over WebSocket (RFC 7395): each mutated message is answered with well-formed documents and a documented close', async () => {
    const open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>";
    const messages = fc.array(mutated([...XMPP_STANZAS, open, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"]), { minLength: 1, maxLength: 4 });
    await fc.assert(
      fc.asyncProperty(messages, fc.boolean(), async (sent, binary) => {
        const ws = new WebSocket(xmppWsUrl(server), ['xmpp']);
        const received: string[] = [];
        ws.on('error', () => undefined);
        ws.on('message', (m: Buffer) => received.push(m.toString('utf8')));
        const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
        await new Promise<void>((r, j) => ws.once('open', () => r()).once('error', j));
        for (const m of [open, ...sent]) ws.send(binary ? Buffer.from(m) : m);
        const code = await Promise.race([closed, new Promise<undefined>((r) => setTimeout(r, 300))]);
        ws.terminate();
        if (code !== undefined) assert.ok([1000, 1005, 1006, 1007, 1009].includes(code), `close ${code}`);
        for (const doc of received) {
          const r = parseDocument(doc, { maxStanzaSize: 1 << 20, maxDepth: 64, maxAttributes: 64 });
          assert.equal(r.error, undefined, `${r.error?.message}: ${doc.slice(0, 300)}`);
        }
      }),
      fuzzParams(40, WIRE_WEIGHT),
    );
  });
});
