/** Backend integration units: revocation rules, signatures, connect close codes, the backend.* options. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { verifySignature } from '../../examples/backend.js';
import { connectCloseCode } from '../../src/core/backend.js';
import { DecisionCache } from '../../src/core/backend-cache.js';
import { signBody } from '../../src/core/backend-hooks.js';
import { HeraldError } from '../../src/core/errors.js';
import { Revocations } from '../../src/core/revocation.js';
import { ConfigError, resolveConfig } from '../../src/index.js';

describe('Revocations', () => {
  test('a revoked jti is refused until it expires', () => {
    const r = new Revocations();
    r.revokeJti('a', Date.now() + 60_000);
    r.revokeJti('old', Date.now() - 1);
    assert.equal(r.isRevoked({ user: 'u', jti: 'a', claims: {} }), true);
    assert.equal(r.isRevoked({ user: 'u', jti: 'b', claims: {} }), false);
    assert.equal(r.isRevoked({ user: 'u', jti: 'old', claims: {} }), false);
  });

  test('issued-before revokes older tokens of that user only, never moves backwards, and covers tokens without iat', () => {
    const r = new Revocations();
    const now = Date.now();
    r.revokeBefore('u', now);
    r.revokeBefore('u', now - 100_000);
    assert.equal(r.isRevoked({ user: 'u', iat: Math.floor((now - 50_000) / 1000), claims: {} }), true);
    assert.equal(r.isRevoked({ user: 'u', iat: Math.floor(now / 1000) + 1, claims: {} }), false);
    assert.equal(r.isRevoked({ user: 'u', claims: {} }), true);
    assert.equal(r.isRevoked({ user: 'v', claims: {} }), false);
  });
});

describe('signatures and close codes', () => {
  test('signBody output verifies with the documented receiver code; a changed body or secret does not', () => {
    const ts = Math.floor(Date.now() / 1000);
    const body = '{"events":[{"id":"1"}]}';
    const headers = { 'x-herald-timestamp': String(ts), 'x-herald-signature': signBody('secret-0123456789abc', ts, body) };
    assert.match(headers['x-herald-signature'], /^sha256=[0-9a-f]{64}$/);
    assert.equal(verifySignature('secret-0123456789abc', headers, body), true);
    assert.equal(verifySignature('secret-0123456789abc', headers, body + ' '), false);
    assert.equal(verifySignature('another-secret-000000', headers, body), false);
  });

  test('connect failures map to 3503 (denied), 3002 (backend trouble, reconnect), 3500 (token)', () => {
    assert.equal(connectCloseCode(new HeraldError('HERALD_ERR_BACKEND_DENIED')), 3503);
    assert.equal(connectCloseCode(new HeraldError('HERALD_ERR_BACKEND_UNAVAILABLE')), 3002);
    assert.equal(connectCloseCode(new HeraldError('HERALD_ERR_BACKEND_TIMEOUT')), 3002);
    assert.equal(connectCloseCode(new HeraldError('HERALD_ERR_TOKEN_REVOKED')), 3500);
    assert.equal(connectCloseCode(new HeraldError('HERALD_ERR_UNAUTHORIZED')), 3500);
  });
});

describe('backend.* options', () => {
  test('defaults: hooks off, rpc at /rpc, fail closed, every webhook event', () => {
    const c = resolveConfig({});
    assert.equal(c.backend.url, undefined);
    assert.equal(c.backend.connectPath, '');
    assert.equal(c.backend.rpcPath, '/rpc');
    assert.equal(c.backend.failOpen, false);
    assert.ok(c.backend.webhookEvents.includes('im.offline_unread'));
  });

  test('bad URLs, paths, secrets, event types and unknown keys are all reported at once', () => {
    try {
      resolveConfig({ backend: { url: 'ftp://x', connectPath: 'no-slash', secret: 'short', webhookEvents: ['nope'], surprise: 1 } });
      assert.fail('expected ConfigError');
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      const text = err.problems.join('\n');
      for (const key of ['backend.url', 'backend.connectPath', 'backend.secret', 'backend.webhookEvents', 'backend'])
        assert.match(text, new RegExp(key.replace('.', '\\.')));
      assert.ok(err.problems.length >= 5, text);
    }
  });
});

describe('DecisionCache', () => {
  test('concurrent lookups of one key share one load; the value is kept for the TTL', async () => {
    const cache = new DecisionCache(60_000);
    let loads = 0;
    const load = async (): Promise<{ allow: boolean }> => {
      loads++;
      await new Promise((r) => setTimeout(r, 20));
      return { allow: true };
    };
    const answers = await Promise.all(Array.from({ length: 50 }, () => cache.get('c:token', load)));
    assert.equal(loads, 1);
    assert.ok(answers.every((a) => a?.allow === true));
    await cache.get('c:token', load);
    assert.equal(loads, 1);
  });

  test('failed loads (undefined or rejected) are not kept; expired entries load again', async () => {
    const cache = new DecisionCache(30);
    let loads = 0;
    assert.equal(await cache.get('k', async () => (loads++, undefined)), undefined);
    await assert.rejects(
      cache.get('k', async () => {
        loads++;
        throw new Error('down');
      }),
      /down/,
    );
    await cache.get('k', async () => (loads++, { allow: true }));
    await new Promise((r) => setTimeout(r, 60));
    await cache.get('k', async () => (loads++, { allow: true }));
    assert.equal(loads, 4);
  });

  test('past its size the least recently used entries go, not the whole cache; invalidate by predicate', async () => {
    const cache = new DecisionCache(60_000, 3);
    for (const k of ['a', 'b', 'c']) await cache.get(k, async () => ({ k }));
    await cache.get('a', async () => ({ k: 'a2' }));
    await cache.get('d', async () => ({ k: 'd' }));
    assert.equal(cache.size, 3);
    assert.deepEqual(await cache.get('a', async () => ({ k: 'reloaded' })), { k: 'a' });
    assert.deepEqual(await cache.get('b', async () => ({ k: 'reloaded' })), { k: 'reloaded' });
    cache.invalidate((key) => key === 'a');
    assert.deepEqual(await cache.get('a', async () => ({ k: 'again' })), { k: 'again' });
    cache.invalidate();
    assert.equal(cache.size, 0);
  });

  test('a TTL of 0 keeps nothing: every lookup loads', async () => {
    const cache = new DecisionCache(0);
    let loads = 0;
    await cache.get('k', async () => (loads++, { allow: true }));
    await cache.get('k', async () => (loads++, { allow: true }));
    assert.equal(loads, 2);
  });
});
