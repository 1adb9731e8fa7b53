/**
 * Fuzzing SCRAM-SHA-1 on the XMPP front (src/fronts/xmpp/scram.ts): client-first and
 * client-final messages, near-valid or random, never throw and never pass without the proof;
 * a correct client (RFC 5802 written out here) always passes, with the server's signature.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { ScramCredentials } from '../../../src/core/backend.js';
import { type ClientFirst, decoyKey, parseClientFirst, ScramExchange } from '../../../src/fronts/xmpp/scram.js';
import { anyText, fuzzParams, mutated } from '../../helpers/fuzz.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const CONDITIONS = new Set(['malformed-request', 'incorrect-encoding', 'invalid-authzid', 'not-authorized']);

function keys(password: string, salt: Buffer, iterations = 4_096): ScramCredentials & { salted: Buffer } {
  const salted = pbkdf2Sync(password, salt, iterations, 20, 'sha1');
  const clientKey = createHmac('sha1', salted).update('Client Key').digest();
  return {
    salt,
    iterations,
    salted,
    storedKey: createHash('sha1').update(clientKey).digest(),
    serverKey: createHmac('sha1', salted).update('Server Key').digest(),
  };
}

const CREDENTIALS = keys('pencil', randomBytes(16));
const FIRSTS = ['n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL', 'y,,n=us=2Cer,r=abc', 'n,a=user@localhost,n=user,r=x', 'n,,n=user,r=abc,ext=1'];

/** A started exchange for `user` and the server-first message it sent. */
function started(user = 'user'): { x: ScramExchange; first: ClientFirst; serverFirst: string } {
  const first = parseClientFirst(b64(`n,,n=${user},r=clientnonce`), 'localhost') as ClientFirst;
  const x = new ScramExchange(first, CREDENTIALS, decoyKey(undefined));
  return { x, first, serverFirst: Buffer.from(x.challenge(), 'base64').toString() };
}

describe('fuzz: SCRAM-SHA-1', () => {
  test('client-first messages, near-valid or random, base64 or not, never throw', () => {
    fc.assert(
      fc.property(fc.oneof(mutated(FIRSTS).map(b64), mutated(FIRSTS.map(b64)), anyText), (text) => {
        const r = parseClientFirst(text, 'localhost');
        if ('failure' in r) assert.ok(CONDITIONS.has(r.failure), r.failure);
        else {
          assert.ok(r.user.length > 0);
          assert.ok(!r.clientNonce.includes(','));
          assert.equal(Buffer.from(text.trim(), 'base64').toString('utf8'), r.gs2Header + r.bare);
        }
      }),
      fuzzParams(2000),
    );
  });

  test('client-final messages without the proof never pass, and never throw', () => {
    const { x, serverFirst } = started();
    const nonce = /r=([^,]+)/.exec(serverFirst)![1]!;
    const finals = [`c=biws,r=${nonce},p=${b64('x'.repeat(20))}`, `c=biws,r=${nonce},ext=1,p=AAAA`, `c=eSws,r=${nonce},p=`];
    fc.assert(
      fc.property(fc.oneof(mutated(finals).map(b64), mutated(finals.map(b64)), anyText), (text) => {
        const r = x.finish(text);
        assert.ok('failure' in r, 'passed without the proof');
        assert.ok(CONDITIONS.has(r.failure), r.failure);
      }),
      fuzzParams(2000),
    );
  });

  test('a correct client passes with any user name, nonce and password, and gets the server signature', () => {
    const printable = fc.string({ unit: fc.constantFrom(...'abcXYZ019+/=-_.!~"'.split('')), minLength: 1, maxLength: 24 });
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'ab,=.@-_9'.split('')), minLength: 1, maxLength: 16 }),
        printable,
        fc.string({ minLength: 0, maxLength: 16 }),
        (user, clientNonce, password) => {
          const credentials = keys(password, randomBytes(8));
          const saslname = user.replace(/=/g, '=3D').replace(/,/g, '=2C');
          const bare = `n=${saslname},r=${clientNonce}`;
          const first = parseClientFirst(b64(`n,,${bare}`), 'localhost');
          assert.ok(!('failure' in first), JSON.stringify(first));
          assert.equal(first.user, user);
          const x = new ScramExchange(first, credentials, decoyKey(undefined));
          const serverFirst = Buffer.from(x.challenge(), 'base64').toString();
          const final = `c=${b64('n,,')},r=${/r=([^,]+)/.exec(serverFirst)![1]}`;
          const authMessage = `${bare},${serverFirst},${final}`;
          const clientKey = createHmac('sha1', credentials.salted).update('Client Key').digest();
          const signature = createHmac('sha1', credentials.storedKey).update(authMessage).digest();
          const proof = Buffer.from(clientKey.map((b, i) => b ^ signature[i]!)).toString('base64');
          const r = x.finish(b64(`${final},p=${proof}`));
          assert.ok('success' in r, JSON.stringify(r));
          assert.equal(Buffer.from(r.success, 'base64').toString(), `v=${createHmac('sha1', credentials.serverKey).update(authMessage).digest('base64')}`);
        },
      ),
      fuzzParams(200),
    );
  });
});
