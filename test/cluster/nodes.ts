/**
 * Herald nodes as separate processes for the cluster suite: the CLI run from source
 * (test/helpers/herald-cli.ts) on 127.0.0.1, each told its port and Redis by flags, and
 * `useNodes`, the set-up of a describe block's nodes and their clean-up.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { deleteKeys, PrivateRedis, SHARED_REDIS_URL, testPrefix } from './redis.js';

const ENTRY = join(import.meta.dirname, '..', 'helpers', 'herald-cli.ts');

/**
 * Test timings handed to every node (small, so tests never wait for production timeouts), and
 * loopback trust: the tests call the server API from loopback without a key.
 */
const TEST_FLAGS = [
  '--trust-loopback',
  'true',
  '--timing.long-poll-timeout-ms',
  '1000',
  '--timing.ping-interval-ms',
  '300',
  '--timing.shutdown-timeout-ms',
  '500',
  '--nchan.enabled',
  'false',
];

/** The environment without the developer's HERALD_* variables. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  return { ...env, ...extra };
}

/** Every process started here: stopped when the test process exits, whatever happened to the test. */
const LIVE = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of LIVE) child.kill('SIGTERM');
});

/** A running herald process. */
export class NodeProcess {
  readonly child: ChildProcess;
  readonly args: readonly string[];
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  port = 0;

  private constructor(command: string, args: string[], env: Record<string, string>) {
    this.args = args;
    this.child = spawn(process.execPath, ['--import', 'tsx', ENTRY, command, ...args], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    LIVE.add(this.child);
    this.exited = new Promise((resolve) =>
      this.child.once('exit', (code, signal) => {
        LIVE.delete(this.child);
        resolve({ code, signal });
      }),
    );
    this.child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  /**
   * Start `herald serve` (or `herald dispatch`) with the Redis broker at `redis` (key prefix `prefix`) and wait until it
   * listens. `port` 0 picks a free one. Extra flags go last.
   */
  static async start(opts: {
    redis: string;
    prefix: string;
    port?: number;
    args?: string[];
    env?: Record<string, string>;
    command?: 'serve' | 'dispatch';
  }): Promise<NodeProcess> {
    const args = [
      '--host',
      '127.0.0.1',
      '--port',
      String(opts.port ?? 0),
      '--redis',
      opts.redis,
      '--redis.prefix',
      opts.prefix,
      '--data-dir',
      join('/tmp', `herald-cluster-${process.pid}`),
      ...TEST_FLAGS,
      ...(opts.args ?? []),
    ];
    const node = new NodeProcess(opts.command ?? 'serve', args, { HERALD_LOG_LEVEL: 'info', ...opts.env });
    try {
      await node.listening();
    } catch (err) {
      // Never leave a half-started node behind (its workers would keep heartbeating).
      await node.stop('SIGTERM');
      throw err;
    }
    return node;
  }

  /** Wait for the "herald listening" log line. */
  async listening(timeoutMs = 240_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = /"port":(\d+)[^\n]*herald (?:dispatcher )?listening/.exec(this.stdout);
      if (m) {
        this.port = Number(m[1]);
        return;
      }
      if (this.child.exitCode !== null) throw new Error(`herald exited ${this.child.exitCode}: ${this.stderr}${this.stdout}`);
      if (Date.now() > deadline) throw new Error(`herald did not start: ${this.stderr}${this.stdout}`);
      await new Promise((res) => setTimeout(res, 20));
    }
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/connection/websocket`;
  }

  /** Send `signal` and wait for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Body of a publish answer: results, or an error. */
export interface PublishBody {
  results: Array<{ channel: string; epoch: string; offset: number; position: string }>;
  code?: string;
  message?: string;
}

/** POST /api/publish on a node; returns the status and JSON body. */
export async function apiPublish(node: NodeProcess, channel: string, data: unknown): Promise<{ status: number; body: PublishBody }> {
  const res = await fetch(`${node.url}/api/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ channel, data }),
  });
  return { status: res.status, body: (await res.json()) as PublishBody };
}

/** Time allowed for a describe block's nodes to start (tsx compiles on first start; CI machines are slow). */
export const STARTUP_MS = 150_000;

/** A client the cluster fixture ends after the block: a WebSocket client (terminate) or an IM client (kill). */
type Endable = { terminate(): void } | { kill(): void };

/** The nodes of one describe block, with the Redis they share and the clients to end after it. */
export interface Cluster<C extends Endable> {
  /** The nodes, in start order (a dispatcher, when asked for, is not among them). */
  readonly nodes: NodeProcess[];
  /** The first and second node. */
  readonly a: NodeProcess;
  readonly b: NodeProcess;
  /** `herald dispatch` over the same Redis, when `dispatcher` was set. */
  readonly dispatcher: NodeProcess;
  /** The private Redis, when `privateRedis` was set (tests may stop and restart it). */
  readonly redis: PrivateRedis;
  /** The Redis URL and key prefix the nodes use. */
  readonly redisUrl: string;
  readonly prefix: string;
  /** Clients ended after the block. */
  readonly clients: C[];
}

/**
 * Start `count` nodes (default 2) sharing Redis in the describe block's `before`, and in its
 * `after` end every tracked client, stop the nodes (`stopSignal`, default SIGTERM) and remove
 * what they left: the run's keys in the shared Redis (a fresh prefix per block), or the private
 * Redis server (`privateRedis`, for tests that stop it), then `cleanup`.
 */
export function useNodes<C extends Endable = Endable>(opts: {
  tag: string;
  count?: number;
  args?: string[];
  /** Flags of node `i` alone (after `args`), e.g. a port of its own. */
  nodeArgs?: (i: number) => Promise<string[]> | string[];
  privateRedis?: boolean;
  dispatcher?: boolean;
  stopSignal?: NodeJS.Signals;
  startupMs?: number;
  cleanup?: () => Promise<unknown> | void;
}): Cluster<C> {
  const nodes: NodeProcess[] = [];
  const clients: C[] = [];
  let redis: PrivateRedis | undefined;
  let dispatcher: NodeProcess | undefined;
  const prefix = opts.privateRedis ? `${opts.tag}:` : testPrefix(opts.tag);
  const need = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new Error(`useNodes: no ${what} (not started, or not asked for)`);
    return v;
  };
  const cluster: Cluster<C> = {
    nodes,
    clients,
    prefix,
    get a() {
      return need(nodes[0], 'node a');
    },
    get b() {
      return need(nodes[1], 'node b');
    },
    get dispatcher() {
      return need(dispatcher, 'dispatcher');
    },
    get redis() {
      return need(redis, 'private Redis');
    },
    get redisUrl() {
      return redis?.url ?? SHARED_REDIS_URL;
    },
  };
  before(
    async () => {
      if (opts.privateRedis) redis = await PrivateRedis.start();
      const start = async (i: number, command?: 'dispatch'): Promise<NodeProcess> =>
        NodeProcess.start({
          redis: cluster.redisUrl,
          prefix,
          ...(command ? { command } : { args: [...(opts.args ?? []), ...((await opts.nodeArgs?.(i)) ?? [])] }),
        });
      const started = await Promise.all([...Array.from({ length: opts.count ?? 2 }, (_, i) => start(i)), ...(opts.dispatcher ? [start(-1, 'dispatch')] : [])]);
      if (opts.dispatcher) dispatcher = started.pop();
      nodes.push(...started);
    },
    { timeout: opts.startupMs ?? STARTUP_MS },
  );
  after(async () => {
    for (const c of clients) {
      if ('terminate' in c) c.terminate();
      else c.kill();
    }
    await Promise.all([...nodes.map((n) => n.stop(opts.stopSignal)), dispatcher?.stop()]);
    if (redis) await redis.destroy();
    else await deleteKeys(SHARED_REDIS_URL, prefix);
    await opts.cleanup?.();
  });
  return cluster;
}
