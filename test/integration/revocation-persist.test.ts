/**
 * Token revocations of a single node survive a restart (kept in the data directory until the
 * token's own exp): before, a restart brought every revoked token back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { WsClient } from '../helpers/clients.js';
import { startServer, wsUrl } from '../helpers/server.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

const KEY = 'revocation-test-key-0123456789';

async function revoke(server: HeraldServer, body: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${server.url()}/api/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': KEY },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200, await r.text());
}

async function connectError(server: HeraldServer, token: string): Promise<string | undefined> {
  const c = await WsClient.open(wsUrl(server));
  const r = await c.command('connect', { token });
  c.terminate();
  return r.error?.name;
}

describe('revocations on one node', () => {
  test('a revoked jti and a user-wide revocation still hold after a restart; expired ones are dropped', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'herald-revocations-'));
    const config = { dataDir, apiKey: KEY, trustLoopback: false, auth: { hmacSecret: TEST_SECRET } };
    const exp = Math.floor(Date.now() / 1000) + 600;
    const stolen = await signToken('alice', { jti: 'stolen-1' }, { exp });
    const old = await signToken('bob', {}, { exp });
    try {
      let server = await startServer(config);
      await revoke(server, { jti: 'stolen-1', expiresAt: exp * 1000 });
      await revoke(server, { jti: 'long-gone', expiresAt: Date.now() + 200 });
      await revoke(server, { user: 'bob', issuedBefore: Date.now() + 1_000 });
      assert.equal(await connectError(server, stolen), 'HERALD_ERR_TOKEN_REVOKED');
      await server.close();
      await new Promise((r) => setTimeout(r, 300));

      server = await startServer(config);
      try {
        assert.equal(await connectError(server, stolen), 'HERALD_ERR_TOKEN_REVOKED', 'the jti is still revoked after the restart');
        assert.equal(await connectError(server, old), 'HERALD_ERR_TOKEN_REVOKED', 'so is the user-wide revocation');
        assert.equal(await connectError(server, await signToken('alice', { jti: 'fresh-2' }, { exp })), undefined);
        // Saved again on the next change: the jti past its expiry is gone from the file.
        await revoke(server, { jti: 'another', expiresAt: exp * 1000 });
        const saved = JSON.parse(readFileSync(join(dataDir, 'revocations.json'), 'utf8')) as { jti: Array<[string, number]> };
        assert.deepEqual(saved.jti.map(([j]) => j).sort(), ['another', 'stolen-1']);
      } finally {
        await server.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
