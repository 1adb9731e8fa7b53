/**
 * The XMPP front's guarded XML parser: streams fed in arbitrary chunks, RFC 7395 documents,
 * restricted XML (DOCTYPE, entities, comments, processing instructions: billion-laughs and
 * external entities included), limits on stanza size, depth and attributes, and a fuzz run
 * showing no input makes it throw.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDocument, type ParseResult, type XmlEvent, type XmlLimits, XmlParser } from '../../src/fronts/xmpp/parser.js';
import { el, esc, NS } from '../../src/fronts/xmpp/xml.js';

const LIMITS: XmlLimits = { maxStanzaSize: 4096, maxDepth: 8, maxAttributes: 16 };
const HEADER = "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";

function stream(chunks: string[], limits = LIMITS): { events: XmlEvent[]; error?: ParseResult['error'] } {
  const p = new XmlParser(limits, 'stream');
  const events: XmlEvent[] = [];
  for (const c of chunks) {
    const r = p.write(c);
    events.push(...r.events);
    if (r.error) return { events, error: r.error };
  }
  return { events };
}

const BILLION_LAUGHS = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<message><body>&lol9;</body></message>`;

void describe('XMPP parser: streams', () => {
  void test('yields the stream header, each stanza with namespaces resolved, and the close', () => {
    const r = stream([
      HEADER,
      "<iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq> ",
      '<message to="b@x"><body>a &amp; b &#x263A;</body></message></stream:stream>',
    ]);
    assert.equal(r.error, undefined);
    assert.deepEqual(
      r.events.map((e) => e.type),
      ['open', 'element', 'element', 'close'],
    );
    const open = r.events[0] as { element: { local: string; ns: string; attr(n: string): string | undefined } };
    assert.equal(open.element.local, 'stream');
    assert.equal(open.element.ns, NS.STREAM);
    assert.equal(open.element.attr('to'), 'localhost');
    const iq = (r.events[1] as { element: import('../../src/fronts/xmpp/xml.js').XmlElement }).element;
    assert.equal(iq.ns, NS.CLIENT);
    assert.equal(iq.child('query', NS.ROSTER)?.ns, NS.ROSTER);
    const msg = (r.events[2] as { element: import('../../src/fronts/xmpp/xml.js').XmlElement }).element;
    assert.equal(msg.childText('body'), 'a & b \u263A');
  });

  void test('a stanza split across chunks at every byte is the same stanza', () => {
    const text = "<message to='b@x' id='m1'><body>hello</body><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>";
    for (let i = 1; i < text.length; i++) {
      const r = stream([HEADER, text.slice(0, i), text.slice(i)]);
      assert.equal(r.error, undefined);
      assert.equal(r.events.length, 2, `split at ${i}`);
      const m = (r.events[1] as { element: import('../../src/fronts/xmpp/xml.js').XmlElement }).element;
      assert.equal(m.childText('body'), 'hello');
      assert.equal(m.child('origin-id', NS.SID)?.attr('id'), 'o1');
    }
  });

  void test('whitespace keep-alives between stanzas are ignored', () => {
    const r = stream([HEADER, ' ', '\n ', '<presence/>', ' ']);
    assert.equal(r.error, undefined);
    assert.deepEqual(
      r.events.map((e) => e.type),
      ['open', 'element'],
    );
  });
});

void describe('XMPP parser: restricted XML', () => {
  void test('billion laughs is refused at the DOCTYPE with restricted-xml, nothing expanded', () => {
    const r = parseDocument(BILLION_LAUGHS, LIMITS);
    assert.equal(r.error?.condition, 'restricted-xml');
    const s = stream([HEADER, BILLION_LAUGHS.replace('<?xml version="1.0"?>\n', '')]);
    assert.ok(s.error, 'a DOCTYPE inside a stream fails too');
  });

  void test('an external entity (XXE) is never resolved', () => {
    const r = parseDocument('<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><message><body>&xxe;</body></message>', LIMITS);
    assert.equal(r.error?.condition, 'restricted-xml');
  });

  void test('entity references other than the five predefined ones are refused', () => {
    for (const e of ['&lol;', '&nbsp;', '&constructor;', '&__proto__;']) {
      const r = stream([HEADER, `<message><body>${e}</body></message>`]);
      assert.equal(r.error?.condition, 'restricted-xml', e);
      assert.equal(r.events.length, 1, 'only the stream header came out');
    }
    const ok = parseDocument('<message><body>&lt;&gt;&amp;&quot;&apos;&#65;&#x42;</body></message>', LIMITS);
    assert.equal(ok.element?.childText('body'), '<>&"\'AB');
  });

  void test('comments and processing instructions are refused', () => {
    assert.equal(stream([HEADER, '<!-- hi -->']).error?.condition, 'restricted-xml');
    assert.equal(stream([HEADER, '<message><!-- hi --></message>']).error?.condition, 'restricted-xml');
    assert.equal(stream([HEADER, '<?evil x?>']).error?.condition, 'restricted-xml');
    assert.equal(parseDocument('<message><?pi?></message>', LIMITS).error?.condition, 'restricted-xml');
  });

  void test('malformed XML is not-well-formed, and the parser refuses later input', () => {
    const p = new XmlParser(LIMITS, 'stream');
    p.write(HEADER);
    const bad = p.write('<message><body></message>');
    assert.equal(bad.error?.condition, 'not-well-formed');
    const after = p.write('<presence/>');
    assert.equal(after.events.length, 0);
    assert.equal(after.error, bad.error);
    for (const text of ['<a b="1" b="2"/>', '<a', '<a></b>', '<x:a/>', '<a>\u0001</a>', '<a/><b/>', 'text', '<a &/>']) {
      assert.ok(parseDocument(text, LIMITS).error, text);
    }
  });
});

void describe('XMPP parser: limits', () => {
  void test('a stanza over maxStanzaSize is refused with policy-violation, across chunks too', () => {
    const big = `<message><body>${'x'.repeat(5000)}</body></message>`;
    assert.equal(stream([HEADER, big]).error?.condition, 'policy-violation');
    const chunks = [HEADER, '<message><body>'];
    for (let i = 0; i < 50; i++) chunks.push('y'.repeat(100));
    assert.equal(stream(chunks).error?.condition, 'policy-violation');
    // The limit counts per stanza: many stanzas just under it pass.
    const ok = `<message><body>${'z'.repeat(3900)}</body></message>`;
    assert.equal(stream([HEADER, ok, ok, ok]).error, undefined);
  });

  void test('endless text between stanzas is refused with policy-violation', () => {
    const chunks = [HEADER];
    for (let i = 0; i < 50; i++) chunks.push(' '.repeat(100));
    assert.equal(stream(chunks).error?.condition, 'policy-violation');
  });

  void test('nesting deeper than maxDepth and too many attributes are refused with policy-violation', () => {
    const deep = `${'<a>'.repeat(9)}${'</a>'.repeat(9)}`;
    assert.equal(parseDocument(deep, LIMITS).error?.condition, 'policy-violation');
    assert.equal(parseDocument(`${'<a>'.repeat(8)}${'</a>'.repeat(8)}`, LIMITS).error, undefined);
    assert.equal(stream([HEADER, deep]).error?.condition, 'policy-violation');
    const attrs = Array.from({ length: 17 }, (_, i) => `a${i}="1"`).join(' ');
    assert.equal(parseDocument(`<message ${attrs}/>`, LIMITS).error?.condition, 'policy-violation');
  });
});

void describe('XMPP parser: fuzz', () => {
  void test('random mutations of valid stanzas never throw: each gives stanzas or an error', () => {
    let seed = 42;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const samples = [
      "<message to='b@localhost' type='chat' id='1'><body>hi &amp; bye</body><origin-id xmlns='urn:xmpp:sid:0' id='x'/></message>",
      "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>",
      '<presence><show>away</show><status>out</status></presence>',
      "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAeA==</auth>",
    ];
    const junk = [
      '<',
      '>',
      '&',
      ';',
      '"',
      "'",
      '/',
      '<!--',
      '<?',
      ']]>',
      '<![CDATA[',
      '&#0;',
      '&#xD800;',
      'xmlns:p="u"',
      '<p:q/>',
      '\u0000',
      '\uFFFF',
      '<!DOCTYPE',
    ];
    for (let i = 0; i < 3000; i++) {
      let s = samples[rand(samples.length)]!;
      for (let k = 0; k <= rand(4); k++) {
        const at = rand(s.length + 1);
        const op = rand(3);
        if (op === 0) s = s.slice(0, at) + junk[rand(junk.length)] + s.slice(at);
        else if (op === 1) s = s.slice(0, at) + s.slice(at + 1 + rand(5));
        else s = s.slice(0, at) + s.slice(rand(s.length));
      }
      const doc = parseDocument(s, LIMITS);
      assert.ok((doc.element === undefined) !== (doc.error === undefined), s);
      const cut = rand(s.length + 1);
      const st = stream([HEADER, s.slice(0, cut), s.slice(cut)]);
      assert.ok(st.events.length >= 1, s);
    }
  });
});

void describe('XMPP XML output', () => {
  void test('escapes attribute values and text', () => {
    assert.equal(el('body', { a: `<"'&>` }, [esc(`<"'&>`)]), '<body a="&lt;&quot;&apos;&amp;&gt;">&lt;&quot;&apos;&amp;&gt;</body>');
    assert.equal(el('x', { skip: undefined }), '<x/>');
    const round = parseDocument(el('message', { to: 'a"b' }, [el('body', {}, [esc('1 < 2 & "3"')])]), LIMITS);
    assert.equal(round.element?.attr('to'), 'a"b');
    assert.equal(round.element?.childText('body'), '1 < 2 & "3"');
  });
});
