/**
 * A Herald server wired to the real example backend (examples/backend.ts), one pair per suite:
 * a temporary data directory holding the IM store, the backend on a free port, the server on
 * port 0 with the IM store opened, and the suite's clients closed after each test. Call
 * `useBackendServer` inside `describe`: it registers the suite's before/afterEach/after hooks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before } from 'node:test';
import { type ExampleBackend, type ExampleBackendOptions, startBackend } from '../../examples/backend.js';
import type { HeraldServer } from '../../src/index.js';
import { WsClient } from './clients.js';
import { startServer, wsUrl } from './server.js';

type Config = Parameters<typeof startServer>[0];

/** What a suite reaches through the fixture (valid from its `before` hook on). */
export interface BackendFixture {
  readonly server: HeraldServer;
  readonly backend: ExampleBackend;
  /** A connected native WebSocket client (`user` alone, or the connect params), closed after the test. */
  open(params: string | Record<string, unknown>): Promise<WsClient>;
  /** Track a client opened otherwise, so it is closed after the test. */
  track(c: WsClient): WsClient;
}

/**
 * Register the hooks. `config(backendUrl)` gives the server's configuration; its IM store is
 * `<temporary dir>/im.db`.
 */
export function useBackendServer(prefix: string, backendOptions: ExampleBackendOptions, config: (backendUrl: string) => Config): BackendFixture {
  let server: HeraldServer | undefined;
  let backend: ExampleBackend | undefined;
  let dir = '';
  const clients: WsClient[] = [];
  const ready = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the backend fixture is used before its before() hook ran');
    return v;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), `herald-${prefix}-`));
    backend = await startBackend(backendOptions);
    const cfg = config(backend.url) ?? {};
    const im = (cfg as { im?: Record<string, unknown> }).im ?? {};
    server = await startServer({ ...cfg, im: { ...im, storePath: join(dir, 'im.db') } } as Config);
    // Open the IM store before the first test (hooks and webhooks may write to it at login).
    await server.im.ready();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });
  after(async () => {
    await server?.close();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  return {
    get server() {
      return ready(server);
    },
    get backend() {
      return ready(backend);
    },
    async open(params) {
      const c = await WsClient.connected(wsUrl(ready(server)), typeof params === 'string' ? { user: params } : params);
      clients.push(c);
      return c;
    },
    track(c) {
      clients.push(c);
      return c;
    },
  };
}
