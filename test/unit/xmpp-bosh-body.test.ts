/**
 * The BOSH body parser: well-formed bodies give their attributes and elements; anything else,
 * including every truncation and many seeded random edits of real bodies, gives `bad-request`
 * or `policy-violation` and never throws.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NS_HTTPBIND, parseBoshBody } from '../../src/fronts/xmpp/bosh.js';
import type { XmlLimits } from '../../src/fronts/xmpp/parser.js';

const LIMITS: XmlLimits = { maxStanzaSize: 1024, maxDepth: 8, maxAttributes: 16 };
const BODIES = [
  `<body rid='1' to='localhost' wait='60' hold='1' xmpp:version='1.0' xmlns='${NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh'/>`,
  `<body rid='2' sid='s' xmlns='${NS_HTTPBIND}'><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAeA==</auth></body>`,
  `<body rid='3' sid='s' xmlns='${NS_HTTPBIND}'><message to='b@localhost' type='chat' xmlns='jabber:client'><body>hi &amp; &#x1F600;</body></message><presence xmlns='jabber:client'/></body>`,
  `<body rid='4' sid='s' type='terminate' xmlns='${NS_HTTPBIND}'><presence type='unavailable' xmlns='jabber:client'/></body>`,
];
const CONDITIONS = new Set(['bad-request', 'policy-violation']);

/** A small seeded PRNG (mulberry32), so that every run edits the same way. */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES = ['<', '>', '/', '&', '&a;', ']]>', '<!DOCTYPE x>', '<?pi?>', '<!--c-->', "'", '"', '\0', '\uD800', 'xmlns:p="u"', '<body>', '</body>', ' x="1"'];

describe('BOSH body parser', () => {
  test('reads the attributes and the elements of well-formed bodies', () => {
    const r = parseBoshBody(BODIES[2]!, LIMITS);
    assert.ok('body' in r);
    assert.equal(r.body.attrs.rid, '3');
    assert.deepEqual(
      r.body.elements.map((e) => [e.local, e.ns]),
      [
        ['message', 'jabber:client'],
        ['presence', 'jabber:client'],
      ],
    );
    const created = parseBoshBody(BODIES[0]!, LIMITS);
    assert.ok('body' in created && created.body.attrs['xmpp:version'] === '1.0' && created.body.elements.length === 0);
  });

  test('refuses other roots, other namespaces, trailing data and oversized stanzas', () => {
    const cases: Array<[string, string]> = [
      ['<body/>', 'bad-request'],
      [`<open xmlns='${NS_HTTPBIND}'/>`, 'bad-request'],
      [`${BODIES[0]}<x/>`, 'bad-request'],
      [`<body xmlns='${NS_HTTPBIND}'><message>${'a'.repeat(2000)}</message></body>`, 'policy-violation'],
      [`<body xmlns='${NS_HTTPBIND}'>${'<a>'.repeat(12)}${'</a>'.repeat(12)}</body>`, 'policy-violation'],
    ];
    for (const [text, condition] of cases) {
      const r = parseBoshBody(text, LIMITS);
      assert.ok('error' in r && r.error.condition === condition, `${text.slice(0, 60)}: ${JSON.stringify(r).slice(0, 200)}`);
    }
  });

  test('every truncation and 5000 seeded random edits are answered with a condition, never a throw', () => {
    const random = prng(20261207);
    const inputs: string[] = [];
    for (const b of BODIES) for (let i = 0; i < b.length; i++) inputs.push(b.slice(0, i));
    for (let i = 0; i < 5000; i++) {
      let text = BODIES[Math.floor(random() * BODIES.length)]!;
      for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
        const at = Math.floor(random() * (text.length + 1));
        const piece = random() < 0.5 ? PIECES[Math.floor(random() * PIECES.length)]! : String.fromCharCode(Math.floor(random() * 0x3000));
        text = random() < 0.3 ? text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 8)) : text.slice(0, at) + piece + text.slice(at);
      }
      inputs.push(text);
    }
    for (const text of inputs) {
      const r = parseBoshBody(text, LIMITS);
      if ('error' in r) assert.ok(CONDITIONS.has(r.error.condition), r.error.condition);
      else assert.ok(r.body.elements.length <= text.length);
    }
  });
});
