import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { Authenticator, tokenAllowsChannel } from '../../src/core/auth.js';
import { resolveConfig } from '../../src/core/config.js';
import { HeraldError } from '../../src/core/errors.js';

type Key = Awaited<ReturnType<typeof generateKeyPair>>;

function sign(key: Key['privateKey'], alg: string, claims: Record<string, unknown> = {}, sub = 'alice', kid?: string): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg, ...(kid ? { kid } : {}) })
    .setSubject(sub)
    .setExpirationTime('1h')
    .sign(key);
}

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof HeraldError && e.code === code);
}

describe('Authenticator', () => {
  let rsa: Key;
  let ec: Key;
  let dir: string;
  before(async () => {
    rsa = await generateKeyPair('RS256');
    ec = await generateKeyPair('ES256');
    dir = mkdtempSync(join(tmpdir(), 'herald-auth-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('verifies RS256 and ES256 tokens against configured PEM public keys', async () => {
    const auth = new Authenticator(resolveConfig({ auth: { publicKeys: [await exportSPKI(rsa.publicKey), await exportSPKI(ec.publicKey)] } }));
    assert.equal((await auth.verify(await sign(rsa.privateKey, 'RS256'))).user, 'alice');
    assert.equal((await auth.verify(await sign(ec.privateKey, 'ES256', {}, 'bob'))).user, 'bob');
    const other = await generateKeyPair('RS256');
    await rejects(auth.verify(await sign(other.privateKey, 'RS256')), 'HERALD_ERR_UNAUTHORIZED');
  });

  test('concurrent first verifications with PEM keys all succeed', async () => {
    const auth = new Authenticator(resolveConfig({ auth: { publicKeys: [await exportSPKI(rsa.publicKey)] } }));
    const tokens = await Promise.all(['a', 'b', 'c'].map((u) => sign(rsa.privateKey, 'RS256', {}, u)));
    const ids = await Promise.all(tokens.map((t) => auth.verify(t)));
    assert.deepEqual(
      ids.map((i) => i.user),
      ['a', 'b', 'c'],
    );
  });

  test('verifies tokens against a JWKS file by key id', async () => {
    const jwk = { ...(await exportJWK(ec.publicKey)), kid: 'k1', alg: 'ES256' };
    const file = join(dir, 'jwks.json');
    writeFileSync(file, JSON.stringify({ keys: [jwk] }));
    const auth = new Authenticator(resolveConfig({ auth: { jwksFile: file } }));
    assert.equal((await auth.verify(await sign(ec.privateKey, 'ES256', {}, 'carol', 'k1'))).user, 'carol');
  });

  test('verifies tokens against a JWKS served over HTTP, fetching it once; an unreachable URL is HERALD_ERR_UNAVAILABLE, not an invalid token', async () => {
    const jwk = { ...(await exportJWK(rsa.publicKey)), kid: 'remote-1', alg: 'RS256' };
    let fetches = 0;
    const http = createServer((req, res) => {
      fetches++;
      if (req.url !== '/.well-known/jwks.json') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/.well-known/jwks.json`;
    try {
      const auth = new Authenticator(resolveConfig({ auth: { jwksUrl: url } }));
      assert.equal(auth.enabled, true);
      assert.equal((await auth.verify(await sign(rsa.privateKey, 'RS256', {}, 'dora', 'remote-1'))).user, 'dora');
      assert.equal((await auth.verify(await sign(rsa.privateKey, 'RS256', {}, 'erin', 'remote-1'))).user, 'erin');
      assert.equal(fetches, 1, 'keys are cached');
      const other = await generateKeyPair('RS256');
      await rejects(auth.verify(await sign(other.privateKey, 'RS256', {}, 'mallory', 'remote-1')), 'HERALD_ERR_UNAUTHORIZED');
    } finally {
      await new Promise((resolve) => http.close(resolve));
    }
    const down = new Authenticator(resolveConfig({ auth: { jwksUrl: url } }));
    await rejects(down.verify(await sign(rsa.privateKey, 'RS256', {}, 'dora', 'remote-1')), 'HERALD_ERR_UNAVAILABLE');
  });

  test('checks audience and issuer when configured', async () => {
    const secret = 'aud-secret-0123456789abcdef';
    const auth = new Authenticator(resolveConfig({ auth: { hmacSecret: secret, audience: 'herald', issuer: 'backend' } }));
    const key = new TextEncoder().encode(secret);
    const good = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('d').setAudience('herald').setIssuer('backend').sign(key);
    assert.equal((await auth.verify(good)).user, 'd');
    const wrongAud = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('d').setAudience('other').setIssuer('backend').sign(key);
    await rejects(auth.verify(wrongAud), 'HERALD_ERR_UNAUTHORIZED');
  });

  test('rejects tokens without a usable sub, and any token when verification is not configured', async () => {
    const secret = 'sub-secret-0123456789abcdef';
    const auth = new Authenticator(resolveConfig({ auth: { hmacSecret: secret } }));
    const key = new TextEncoder().encode(secret);
    const noSub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).sign(key);
    await rejects(auth.verify(noSub), 'HERALD_ERR_UNAUTHORIZED');
    const badSub = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('has space').sign(key);
    await rejects(auth.verify(badSub), 'HERALD_ERR_UNAUTHORIZED');
    const off = new Authenticator(resolveConfig());
    assert.equal(off.enabled, false);
    await rejects(off.verify(noSub), 'HERALD_ERR_UNAUTHORIZED');
  });

  test('development identities need dev mode and a valid name', () => {
    assert.throws(() => new Authenticator(resolveConfig()).devIdentity('bob'), HeraldError);
    const dev = new Authenticator(resolveConfig({ dev: true }));
    assert.equal(dev.devIdentity('bob').user, 'bob');
    assert.throws(() => dev.devIdentity('bad name'), HeraldError);
  });

  test('a channels claim grants exact names and * prefixes; no claim grants everything', () => {
    const id = { user: 'u', channels: ['news:*', 'exact'], claims: {} };
    assert.equal(tokenAllowsChannel(id, 'news:sport'), true);
    assert.equal(tokenAllowsChannel(id, 'exact'), true);
    assert.equal(tokenAllowsChannel(id, 'exactly'), false);
    assert.equal(tokenAllowsChannel(id, 'other'), false);
    assert.equal(tokenAllowsChannel({ user: 'u', claims: {} }, 'anything'), true);
    assert.equal(tokenAllowsChannel(undefined, 'anything'), true);
  });
});
