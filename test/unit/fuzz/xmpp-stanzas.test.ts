/**
 * Fuzzing what the XMPP front reads out of parsed input and writes back: BOSH request bodies,
 * the IM actions of chat messages (receipts, markers, chat states, corrections, retractions),
 * archive queries (XEP-0313 with RSM) and the stanzas rendered from IM entries. Readers never
 * throw anything but a StanzaError with a documented condition; what they accept stays in
 * bounds; rendered stanzas are well-formed whatever the payload.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { NS_HTTPBIND, parseBoshBody } from '../../../src/fronts/xmpp/bosh.js';
import { chatAction, MAX_ID_LENGTH } from '../../../src/fronts/xmpp/chat.js';
import { StanzaError } from '../../../src/fronts/xmpp/errors.js';
import { MAX_PAGE, parseMamQuery } from '../../../src/fronts/xmpp/mam.js';
import { parseDocument, type XmlLimits } from '../../../src/fronts/xmpp/parser.js';
import { chatMessageXml, sentCarbonXml } from '../../../src/fronts/xmpp/render.js';
import { awkwardJson, fuzzParams, mutated } from '../../helpers/fuzz.js';

const LIMITS: XmlLimits = { maxStanzaSize: 4096, maxDepth: 8, maxAttributes: 16 };

const BODIES = [
  `<body rid='1' to='localhost' wait='60' hold='1' xmpp:version='1.0' xmlns='${NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh'/>`,
  `<body rid='2' sid='s' xmlns='${NS_HTTPBIND}'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAeA==</auth></body>`,
  `<body rid='3' sid='s' xmlns='${NS_HTTPBIND}'><message to='b@localhost' type='chat' xmlns='jabber:client'><body>hi &amp; &#x1F600;</body></message><presence xmlns='jabber:client'/></body>`,
  `<body rid='4' sid='s' type='terminate' xmlns='${NS_HTTPBIND}'><presence type='unavailable' xmlns='jabber:client'/></body>`,
  `<body rid='5' sid='s' xmpp:restart='true' xmlns='${NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh'/>`,
];

const MESSAGES = [
  "<message xmlns='jabber:client' to='b@localhost' type='chat' id='m1'><body>hi</body><request xmlns='urn:xmpp:receipts'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>",
  "<message xmlns='jabber:client' to='b@localhost' type='chat' id='m2'><body>fixed</body><replace xmlns='urn:xmpp:message-correct:0' id='m1'/></message>",
  "<message xmlns='jabber:client' to='b@localhost' type='chat' id='m3'><retract xmlns='urn:xmpp:message-retract:1' id='m1'/><fallback xmlns='urn:xmpp:fallback:0'/><body>x</body></message>",
  "<message xmlns='jabber:client' to='b@localhost' type='chat'><apply-to xmlns='urn:xmpp:fasten:0' id='m1'><retract xmlns='urn:xmpp:message-retract:0'/></apply-to></message>",
  "<message xmlns='jabber:client' to='b@localhost' type='chat'><displayed xmlns='urn:xmpp:chat-markers:0' id='s1'/></message>",
  "<message xmlns='jabber:client' to='b@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>",
  "<message xmlns='jabber:client' to='b@localhost'><received xmlns='urn:xmpp:receipts' id='m9'/></message>",
];

const QUERIES = [
  "<query xmlns='urn:xmpp:mam:2' queryid='q'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field><field var='with'><value>b@localhost</value></field><field var='start'><value>2026-01-01T00:00:00Z</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>abc</after></set></query>",
  "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='with'><value>b@localhost</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>5</max><before/></set></query>",
  "<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='with'><value>b@localhost</value></field><field var='end'><value>2026-01-01T00:00:00.123+02:00</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><before>x1</before></set></query>",
];

const CHAT_CONDITIONS = new Set(['bad-request']);
const MAM_CONDITIONS = new Set(['bad-request', 'feature-not-implemented', 'jid-malformed', 'item-not-found']);

/** Run `read` on every input that parses; it returns, or throws a StanzaError with one of `conditions`. */
function readsOrRefuses<T>(text: string, conditions: Set<string>, read: (e: NonNullable<ReturnType<typeof parseDocument>['element']>) => T): T | undefined {
  const doc = parseDocument(text, LIMITS);
  if (!doc.element) return undefined;
  try {
    return read(doc.element);
  } catch (err) {
    assert.ok(err instanceof StanzaError, String(err));
    assert.ok(conditions.has(err.condition), err.condition);
    return undefined;
  }
}

void describe('fuzz: XMPP stanza readers and writers', () => {
  void test('parseBoshBody never throws: a body, or bad-request / policy-violation', () => {
    fc.assert(
      fc.property(mutated(BODIES), (text) => {
        const r = parseBoshBody(text, LIMITS);
        if ('error' in r) assert.ok(r.error.condition === 'bad-request' || r.error.condition === 'policy-violation');
        else assert.ok(r.body.elements.every((e) => e.local.length > 0));
      }),
      fuzzParams(3000),
    );
  });

  void test('chatAction reads any message into one action, or refuses a bad reference with bad-request', () => {
    fc.assert(
      fc.property(mutated(MESSAGES), (text) => {
        const a = readsOrRefuses(text, CHAT_CONDITIONS, chatAction);
        if (a && 'target' in a) assert.ok(a.target.length > 0 && a.target.length <= MAX_ID_LENGTH);
        if (a && 'clientId' in a && a.clientId !== undefined) assert.ok(a.clientId.length <= MAX_ID_LENGTH);
      }),
      fuzzParams(3000),
    );
  });

  void test('parseMamQuery accepts bounded queries only, and refuses the rest with a documented condition', () => {
    fc.assert(
      fc.property(mutated(QUERIES), (text) => {
        const q = readsOrRefuses(text, MAM_CONDITIONS, (e) => parseMamQuery(e, 'localhost'));
        if (!q) return;
        assert.ok(Number.isInteger(q.max) && q.max >= 0 && q.max <= MAX_PAGE);
        assert.ok(!(q.after !== undefined && q.before !== undefined));
        for (const t of [q.start, q.end]) if (t !== undefined) assert.ok(Number.isFinite(t));
        for (const id of [q.after, q.before, q.queryId]) if (typeof id === 'string') assert.ok(id.length <= MAX_ID_LENGTH);
      }),
      fuzzParams(3000),
    );
  });

  void test('rendered messages and carbons are well-formed for any payload and kind', () => {
    const kind = fc.constantFrom('message', 'edit', 'recall', 'member');
    fc.assert(
      fc.property(awkwardJson, kind, fc.string({ maxLength: 30 }), fc.boolean(), (data, k, target, recalled) => {
        const m = { id: 'i1', conversation: 'd:a:b', from: 'a', kind: k, time: 0, data, target, recalled };
        const xml = chatMessageXml(m, { from: 'a@localhost', to: 'b@localhost/r', by: 'b@localhost' }, 'localhost', true);
        if (xml === undefined) return;
        for (const out of [xml, sentCarbonXml(xml, 'a', 'localhost', 'a@localhost/r')]) {
          const r = parseDocument(out, { ...LIMITS, maxStanzaSize: 1 << 20 });
          assert.equal(r.error, undefined, `${out}: ${r.error?.message}`);
        }
      }),
      fuzzParams(2000),
    );
  });
});
