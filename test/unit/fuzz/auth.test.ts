/**
 * Fuzzing token verification: garbage and near-valid JWTs (mutated, re-encoded with odd headers,
 * correctly signed with odd claims) are refused with a documented 401 code, never an "engine
 * unavailable" that a client would retry forever, and what is accepted is a well-typed identity.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import fc from 'fast-check';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { Authenticator } from '../../../src/core/auth.js';
import { resolveConfig } from '../../../src/core/config.js';
import { HeraldError } from '../../../src/core/errors.js';
import { USER_ID_RE } from '../../../src/core/user-id.js';
import { awkwardJson, fuzzParams, mutated } from '../../helpers/fuzz.js';

const SECRET = 'fuzz-secret-fuzz-secret-fuzz-secret!';
const REFUSALS = new Set(['HERALD_ERR_UNAUTHORIZED', 'HERALD_ERR_TOKEN_EXPIRED', 'HERALD_ERR_TOKEN_REVOKED']);

const b64 = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/** Verify and check the outcome: a well-typed identity, or a documented refusal. */
async function check(auth: Authenticator, token: string): Promise<'ok' | string> {
  try {
    const id = await auth.verify(token);
    assert.ok(USER_ID_RE.test(id.user));
    assert.ok(id.name === undefined || typeof id.name === 'string');
    assert.ok(id.channels === undefined || id.channels.every((c) => typeof c === 'string'));
    assert.ok(id.jti === undefined || typeof id.jti === 'string', `jti ${typeof id.jti}`);
    assert.ok(id.exp === undefined || Number.isFinite(id.exp));
    assert.ok(id.iat === undefined || Number.isFinite(id.iat));
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof HeraldError, `not a HeraldError: ${String(e)}`);
    assert.ok(REFUSALS.has(e.code), `${e.code}: ${e.message}`);
    return e.code;
  }
}

void describe('fuzz: JWT verification', () => {
  let hmac: Authenticator;
  let pem: Authenticator;
  let valid: string[];
  before(async () => {
    const rsa = await generateKeyPair('RS256');
    hmac = new Authenticator(resolveConfig({ auth: { hmacSecret: SECRET } }));
    pem = new Authenticator(resolveConfig({ auth: { publicKeys: [await exportSPKI(rsa.publicKey)] } }));
    const key = new TextEncoder().encode(SECRET);
    valid = [
      await new SignJWT({ channels: ['a', 'b*'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('alice').setExpirationTime('1h').sign(key),
      await new SignJWT({ name: 'Bob' }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).setSubject('bob').setIssuedAt().sign(key),
      await new SignJWT({}).setProtectedHeader({ alg: 'RS256' }).setSubject('carol').sign(rsa.privateKey),
    ];
  });

  void test('mutated and random tokens are refused with a 401 code', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constant(null).chain(() => mutated(valid)),
        async (token) => {
          await check(hmac, token);
          await check(pem, token);
        },
      ),
      fuzzParams(300),
    );
  });

  void test('tokens with odd headers (alg none, crit, b64, huge kid, JWK) and odd payload bytes are refused with a 401 code', async () => {
    const header = fc.oneof(
      fc.constantFrom<unknown>(
        { alg: 'none' },
        { alg: 'HS256', crit: ['b64'], b64: false },
        { alg: 'HS256', crit: ['x'] },
        { alg: 'HS256', kid: 'k'.repeat(5000) },
        { alg: 'RS256', jwk: { kty: 'oct', k: 'AA' } },
        { alg: 'HS256', enc: 'A128GCM' },
        { alg: 'ES256' },
        { alg: 'HS256', typ: 7 },
        [],
        'HS256',
        null,
      ),
      awkwardJson,
    );
    const payload = fc.oneof(awkwardJson.map(b64), fc.string({ unit: 'binary', maxLength: 40 }).map(b64), fc.string({ maxLength: 40 }));
    const signature = fc.oneof(
      fc.constant(''),
      fc.string({ maxLength: 60 }),
      fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a).toString('base64url')),
    );
    await fc.assert(
      fc.asyncProperty(header, payload, signature, fc.integer({ min: 0, max: 3 }), async (h, p, s, extraDots) => {
        const token = `${b64(h)}.${p}.${s}${'.'.repeat(extraDots)}`;
        assert.notEqual(await check(hmac, token), 'ok');
        assert.notEqual(await check(pem, token), 'ok');
      }),
      fuzzParams(300),
    );
  });

  void test('correctly signed tokens with any claims give a well-typed identity or a 401 code', async () => {
    const key = new TextEncoder().encode(SECRET);
    const claim = fc.oneof(awkwardJson, fc.string({ maxLength: 20 }), fc.integer());
    const claims = fc.record(
      {
        sub: claim,
        name: claim,
        channels: fc.oneof(claim, fc.array(claim, { maxLength: 3 })),
        jti: claim,
        iat: claim,
        exp: claim,
        nbf: claim,
        aud: claim,
        iss: claim,
      },
      { requiredKeys: [] },
    );
    await fc.assert(
      fc.asyncProperty(claims, async (c) => {
        const token = await new SignJWT({ ...c } as Record<string, unknown>).setProtectedHeader({ alg: 'HS256' }).sign(key);
        await check(hmac, token);
      }),
      fuzzParams(300),
    );
  });
});
