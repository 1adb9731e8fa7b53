/**
 * Fuzzing the XMPP front's inputs and outputs: the guarded XML parser (streams cut into any
 * chunks, RFC 7395 documents, input held after a SASL element), the input queue reading a stream
 * restart pipelined after `<auth/>` in any chunks, SASL PLAIN responses and JIDs never throw; the
 * XML the server writes (`el`, `esc`) is well-formed for any text and parses back to it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { type InputEvent, XmppInput } from '../../../src/fronts/xmpp/input.js';
import { parseDocument, type XmlEvent, type XmlLimits, XmlParser } from '../../../src/fronts/xmpp/parser.js';
import { decodePlain } from '../../../src/fronts/xmpp/sasl.js';
import { fullJid, parseJid } from '../../../src/fronts/xmpp/jid.js';
import { el, esc, NS } from '../../../src/fronts/xmpp/xml.js';
import { fuzzParams, mutated } from '../../helpers/fuzz.js';

const LIMITS: XmlLimits = { maxStanzaSize: 2048, maxDepth: 8, maxAttributes: 16 };
const HEADER = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
const STANZAS = [
  "<message to='b@localhost' type='chat' id='1'><body>hi &amp; bye &#x1F600;</body><origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>",
  "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>",
  '<presence><show>away</show><status><![CDATA[out <now>]]></status></presence>',
  "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHg=</auth>",
  "<r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='4'/>",
  '<p:x xmlns:p="urn:p"><p:y a="1" b="2"/></p:x>',
  '<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
  '</stream:stream>',
];

const CONDITIONS = new Set(['not-well-formed', 'restricted-xml', 'policy-violation']);

/** Characters XML 1.0 allows; `esc` replaces the rest with U+FFFD. */
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/** Parse `chunks` as one stream; with `boundary`, what a chunk holds after a boundary element is taken as the old stream's. */
function feed(chunks: string[], boundary?: (e: { ns: string }) => boolean): { events: XmlEvent[]; error?: string } {
  const p = new XmlParser(LIMITS, 'stream', boundary);
  const events: XmlEvent[] = [];
  for (const c of chunks) {
    const res = p.write(c);
    const r = res.after ? { events: [...res.events, ...res.after.events], error: res.after.error } : res;
    events.push(...r.events);
    if (r.error) {
      assert.ok(CONDITIONS.has(r.error.condition), r.error.condition);
      return { events, error: r.error.condition };
    }
  }
  return { events };
}

/** Cut `text` at the given fractions. */
function cut(text: string, points: number[]): string[] {
  const at = [...new Set(points.map((p) => Math.floor(p * text.length)))].sort((a, b) => a - b);
  const out: string[] = [];
  let from = 0;
  for (const i of at) {
    out.push(text.slice(from, i));
    from = i;
  }
  out.push(text.slice(from));
  return out;
}

void describe('fuzz: XMPP parser', () => {
  void test('a stream of mutated stanzas in any chunks never throws and parses as it does in one piece', () => {
    const body = fc.array(mutated(STANZAS), { minLength: 1, maxLength: 4 }).map((a) => a.join(''));
    fc.assert(
      fc.property(body, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), (text, points) => {
        const whole = feed([HEADER + text]);
        const chunked = feed([HEADER, ...cut(text, points)]);
        assert.equal(chunked.error, whole.error);
        assert.equal(chunked.events.length, whole.events.length);
      }),
      fuzzParams(2000),
    );
  });

  void test('boundary elements change nothing when the stream goes on: the held reading is the reading without them', () => {
    const body = fc.array(mutated(STANZAS), { minLength: 1, maxLength: 4 }).map((a) => a.join(''));
    const sasl = (e: { ns: string }): boolean => e.ns === NS.SASL;
    fc.assert(
      fc.property(body, fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), (text, points) => {
        const chunks = [HEADER, ...cut(text, points)];
        const plain = feed(chunks);
        const held = feed(chunks, sasl);
        assert.equal(held.error, plain.error);
        assert.deepEqual(
          held.events.map((e) => e.type),
          plain.events.map((e) => e.type),
        );
      }),
      fuzzParams(2000),
    );
  });

  void test('a login pipelined in any chunks (header, auth, restart header, bind) is read as two streams, whatever the SASL answer', async () => {
    const auth = (mechanism: string): string => `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='${mechanism}'>AGFsaWNlAHg=</auth>`;
    const bind = "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>";
    await fc.assert(
      fc.asyncProperty(fc.boolean(), fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }), async (succeeds, points) => {
        const seen: string[] = [];
        let done!: () => void;
        const finished = new Promise<void>((r) => (done = r));
        const input: XmppInput = new XmppInput(LIMITS, 'stream', {
          canRun: () => true,
          handle: (ev: InputEvent) => {
            // A session ends its stream at the first error or at the bind: what follows is never handled.
            if (seen.at(-1)?.startsWith('error:') || seen.at(-1) === 'iq') return;
            seen.push(ev.type === 'element' ? ev.element.local : ev.type === 'error' ? `error:${ev.error.condition}` : ev.type);
            if (ev.type === 'error' || (ev.type === 'element' && ev.element.local === 'iq')) done();
            if (ev.type !== 'element' || ev.element.ns !== NS.SASL) return;
            // SASL answers are asynchronous (the connect hook); success restarts the stream.
            return new Promise<void>((resolve) =>
              setImmediate(() => {
                if (succeeds) input.restart();
                resolve();
              }),
            );
          },
          failed: (err) => assert.fail(String(err)),
          pause: () => undefined,
          resume: () => undefined,
        });
        for (const chunk of cut(`${HEADER}${auth(succeeds ? 'PLAIN' : 'NOPE')}${HEADER}${bind}`, points)) input.chunk(chunk);
        await finished;
        // A restart header inside the old stream is an XML declaration out of place.
        assert.deepEqual(seen, succeeds ? ['open', 'auth', 'open', 'iq'] : ['open', 'auth', 'error:not-well-formed']);
      }),
      fuzzParams(500),
    );
  });

  void test('parseDocument gives exactly one element or one error for any text', () => {
    fc.assert(
      fc.property(mutated(STANZAS), (text) => {
        const r = parseDocument(text, LIMITS);
        assert.ok((r.element === undefined) !== (r.error === undefined));
        if (r.error) assert.ok(CONDITIONS.has(r.error.condition));
      }),
      fuzzParams(2000),
    );
  });

  void test('text and attribute values written with el/esc are well-formed XML and read back the same', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ maxLength: 20 }), (text, attr) => {
        const xml = el('message', { to: attr, id: text }, [el('body', {}, [esc(text)])]);
        const r = parseDocument(xml, { ...LIMITS, maxStanzaSize: 1 << 16 });
        assert.equal(r.error, undefined, `${JSON.stringify(text)}: ${r.error?.message}`);
        const clean = text.replace(NOT_XML_CHAR, '\uFFFD');
        assert.equal(r.element!.childText('body'), clean);
        assert.equal(r.element!.attr('id'), clean);
        assert.equal(r.element!.attr('to'), attr.replace(NOT_XML_CHAR, '\uFFFD'));
      }),
      fuzzParams(2000),
    );
  });
});

void describe('fuzz: SASL PLAIN and JIDs', () => {
  void test('decodePlain never throws; what it accepts is what was encoded', () => {
    const part = fc.string({ unit: 'binary', maxLength: 20 }).filter((s) => !s.includes('\0'));
    fc.assert(
      fc.property(part, part, part, fc.boolean(), (authz, user, password, useAuthz) => {
        const encoded = Buffer.from(`${useAuthz ? authz : ''}\0${user}\0${password}`).toString('base64');
        const r = decodePlain(encoded, 'localhost');
        if ('failure' in r) {
          assert.equal(r.failure, useAuthz && authz !== '' ? 'invalid-authzid' : 'malformed-request');
          return;
        }
        assert.deepEqual({ ...r }, { user, password });
      }),
      fuzzParams(1000),
    );
    fc.assert(
      fc.property(mutated(['AGFsaWNlAHNlY3JldA==', 'YWxpY2VAbG9jYWxob3N0AGFsaWNlAHg=', '=', 'AAA=']), (text) => {
        const r = decodePlain(text, 'localhost');
        if ('failure' in r) assert.ok(['malformed-request', 'incorrect-encoding', 'invalid-authzid'].includes(r.failure));
        else assert.ok(typeof r.user === 'string' && typeof r.password === 'string');
      }),
      fuzzParams(2000),
    );
  });

  void test('parseJid never throws and reads back any JID the server writes', () => {
    const user = fc.stringMatching(/^[A-Za-z0-9_.@-]{1,128}$/);
    const domain = fc.stringMatching(/^[a-z0-9.-]{1,40}$/);
    const resource = fc.string({ minLength: 1, maxLength: 40 });
    fc.assert(
      fc.property(user, domain, resource, (u, d, r) => {
        assert.deepEqual({ ...parseJid(fullJid(u, d, r)) }, { user: u, domain: d, resource: r });
      }),
      fuzzParams(1000),
    );
    fc.assert(
      fc.property(mutated(['alice@localhost/web', 'a\\40b@example.com', 'localhost', '@/', 'x@[::1]/r/s']), (text) => {
        const j = parseJid(text);
        if (j) assert.ok(j.domain.length > 0 && (j.user === '' || /^[A-Za-z0-9_.@-]{1,128}$/.test(j.user)));
      }),
      fuzzParams(2000),
    );
  });
});
