/**
 * Inputs the fuzz suites found that broke a parser, a decoder or an encoder, kept as plain
 * regression tests (each names what it broke).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { Authenticator } from '../../../src/core/auth.js';
import { resolveConfig } from '../../../src/core/config.js';
import { HeraldError } from '../../../src/core/errors.js';
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

  void test('JWT: a token whose jti is not a string is refused (a revocation by jti, always a string, could never match it)', async () => {
    const secret = 'regression-secret-regression-secret';
    const auth = new Authenticator(resolveConfig({ auth: { hmacSecret: secret } }));
    const key = new TextEncoder().encode(secret);
    const token = await new SignJWT({ jti: 709562425 } as unknown as Record<string, string>).setProtectedHeader({ alg: 'HS256' }).setSubject('uo').sign(key);
    await assert.rejects(auth.verify(token), (e: unknown) => e instanceof HeraldError && e.code === 'HERALD_ERR_UNAUTHORIZED' && /jti/.test(e.message));
    const ok = await new SignJWT({ jti: 'j-1' }).setProtectedHeader({ alg: 'HS256' }).setSubject('uo').sign(key);
    assert.equal((await auth.verify(ok)).jti, 'j-1');
  });
});
