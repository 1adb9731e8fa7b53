/**
 * Herald nodes as separate processes for the cluster suite: the CLI run from source
 * (test/helpers/herald-cli.ts) on 127.0.0.1, each told its port and Redis by flags.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';

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
