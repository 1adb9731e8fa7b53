/**
 * Start real Herald servers for tests: port 0 on 127.0.0.1, silent, no process metrics, with
 * small intervals so tests never wait for production timeouts. Close them in `after`/`afterEach`.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type HeraldServer } from '../../src/index.js';
import type { Broker } from '../../src/index.js';
import type { Logger } from '../../src/core/logger.js';

/**
 * Test defaults layered under the given config (deep-merged one level for the option groups).
 * Loopback trust is on: tests call the server API from loopback without a key (the tests of
 * the trust rules themselves turn it off).
 */
const TEST_DEFAULTS = {
  host: '127.0.0.1',
  trustLoopback: true,
  // The data directory (IM store, revocations) of this test process, never the checkout's ./data.
  dataDir: join(tmpdir(), `herald-test-${process.pid}`),
  port: 0,
  logLevel: 'silent',
  timing: { pingIntervalMs: 300, connectTimeoutMs: 2_000, longPollTimeoutMs: 1_000, streamKeepAliveMs: 1_000, shutdownTimeoutMs: 500 },
} as const;

type Config = Record<string, unknown>;

function merge(base: Config, over: Config): Config {
  const out: Config = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isObject(b) && isObject(v) ? { ...b, ...v } : v;
  }
  return out;
}

function isObject(v: unknown): v is Config {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Create and start a server; `config` overrides the test defaults (a `logger` replaces the silent one). */
export async function startServer(config: Config = {}, options: { broker?: Broker; logger?: Logger } = {}): Promise<HeraldServer> {
  const server = createServer({ config: merge(TEST_DEFAULTS, config), processMetrics: false, broker: options.broker, logger: options.logger });
  await server.listen();
  return server;
}

/** Base WebSocket URL of the native endpoint. */
export function wsUrl(server: HeraldServer): string {
  return `${server.url().replace('http', 'ws')}/connection/websocket`;
}

/** Resolve once `cond()` holds, polling every 5 ms; rejects after `timeoutMs`. */
export async function waitFor(cond: () => boolean, timeoutMs = 3_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Sleep for `ms` (short waits only). */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A channel name unique within the run. */
let seq = 0;
export function chan(prefix = 'test'): string {
  return `${prefix}-${process.pid}-${++seq}`;
}

/** Publish through the server API; returns the per-channel results. */
export async function publish(
  server: HeraldServer,
  channel: string | string[],
  data: unknown,
  headers: Record<string, string> = {},
): Promise<Array<{ channel: string; epoch: string; offset: number; position: string }>> {
  const body = Array.isArray(channel) ? { channels: channel, data } : { channel, data };
  const res = await fetch(`${server.url()}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as { results: Array<{ channel: string; epoch: string; offset: number; position: string }> };
  if (res.status !== 200) throw new Error(`publish failed: ${res.status} ${JSON.stringify(json)}`);
  return json.results;
}
