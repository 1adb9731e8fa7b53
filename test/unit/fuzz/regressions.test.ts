/**
 * Inputs the fuzz suites found that broke a parser, a decoder or an encoder, kept as plain
 * regression tests (each names what it broke).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDocument } from '../../../src/fronts/xmpp/parser.js';
import { el, esc } from '../../../src/fronts/xmpp/xml.js';

const LIMITS = { maxStanzaSize: 4096, maxDepth: 8, maxAttributes: 16 };

void describe('fuzz findings', () => {
  void test('XMPP: a control character in message text reaches the XMPP client as U+FFFD, not as XML that ends its stream', () => {
    const r = parseDocument(el('body', { id: '\u0003\t' }, [esc('a\u0003b\u0000\uFFFE\uD800c')]), LIMITS);
    assert.equal(r.error, undefined);
    assert.equal(r.element!.text(), 'a\uFFFDb\uFFFD\uFFFD\uFFFDc');
    // Tabs and line breaks survive attribute-value and line-end normalization.
    assert.equal(r.element!.attr('id'), '\uFFFD\t');
    assert.equal(parseDocument(el('body', {}, [esc('x\r\ny\rz')]), LIMITS).element!.text(), 'x\r\ny\rz');
  });
});
