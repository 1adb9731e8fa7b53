/**
 * `GET /ready` on a single node: the IM store and broker checked by real round trips; an IM
 * store that cannot open (unusable data directory, unreachable PostgreSQL) makes it 503 while
 * `/health` stays 200; error details only for callers of the server API.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { startServer } from '../helpers/server.js';

const API_KEY = 'readiness-test-key-0123456789';

async function ready(server: HeraldServer, key?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${server.url()}/ready`, { headers: key ? { 'x-api-key': key } : {} });
  return { status: res.status, body: await res.json() };
}

/** A port nothing listens on (bound and released). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createTcpServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

describe('readiness', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-ready-'));
  const servers: HeraldServer[] = [];
  after(async () => {
    for (const s of servers) await s.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a node with a working SQLite store and the memory broker is ready', async () => {
    const s = await startServer({ dataDir: join(dir, 'ok') });
    servers.push(s);
    const r = await ready(s);
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'ready');
    assert.equal(r.body.node, s.core.nodeId);
    assert.deepEqual(Object.keys(r.body.checks).sort(), ['broker', 'imStore']);
    assert.equal(r.body.checks.imStore.status, 'ok');
    assert.equal(r.body.checks.imStore.engine, 'sqlite');
    assert.equal(r.body.checks.broker.engine, 'memory');
  });

  test('an unusable IM store directory: /ready is 503 naming the IM store, /health stays 200, details only with the API key', async () => {
    const file = join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const s = await startServer({ dataDir: join(dir, 'data-ok'), im: { storePath: join(file, 'data', 'herald.db') }, apiKey: API_KEY });
    servers.push(s);
    const anonymous = await ready(s);
    assert.equal(anonymous.status, 503);
    assert.equal(anonymous.body.status, 'unavailable');
    assert.equal(anonymous.body.checks.imStore.status, 'error');
    assert.equal(anonymous.body.checks.imStore.message, undefined, 'no internals for anonymous callers');
    assert.equal(anonymous.body.checks.broker.status, 'ok');
    await new Promise((r) => setTimeout(r, 1_100)); // past the shared round
    const detailed = await ready(s, API_KEY);
    assert.equal(detailed.status, 503);
    assert.match(detailed.body.checks.imStore.message, /ENOTDIR|EEXIST|not a directory/i);
    assert.equal((await fetch(`${s.url()}/health`)).status, 200);
  });

  test('an unreachable PostgreSQL: /ready is 503 with the postgres IM store failing', async () => {
    const s = await startServer({ database: { url: `postgres://herald@127.0.0.1:${await closedPort()}/herald` } });
    servers.push(s);
    const r = await ready(s);
    assert.equal(r.status, 503);
    assert.equal(r.body.checks.imStore.engine, 'postgres');
    assert.equal(r.body.checks.imStore.status, 'error');
    assert.match(r.body.checks.imStore.message, /ECONNREFUSED|unavailable/i);
  });
});
