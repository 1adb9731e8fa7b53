/**
 * IM macro benchmark: durable 1:1 messages per second on one node, with latency from send to
 * stored (sender ack) and from send to stored → delivered → acked (the recipient's cumulative
 * ack answered), and server memory per connected IM user.
 *
 *   node --import tsx bench/im.ts [--pairs 200] [--window 4] [--duration 10] [--payload 64]
 *                                 [--idle 5000] [--sync full|normal] [--rate <msgs/s>] [--prof <dir>]
 *                                 [--nodes 1|2] [--redis <url>] [--database <postgres url>]
 *
 * The server runs in its own process pinned to core 0; this process (all clients) to core 1.
 * With `--database` the IM store is PostgreSQL in a fresh schema `herald_bench_<random>`, dropped
 * at the end. With `--nodes 2` (needs `--redis`) two nodes share Redis under a fresh key prefix
 * (its keys deleted at the end) and the IM store (PostgreSQL, or one SQLite file): node A pinned
 * to core 0, node B to core 1, this process unpinned; senders connect to node A, recipients to
 * node B, so every message is stored and delivered across nodes. The memory phase always runs
 * on one node.
 * `pairs` senders each keep `window` sends in flight to their own recipient; recipients ack
 * cumulatively once per event-loop turn, as an SDK would (senders ack the echo of their own
 * sends the same way). With `--rate`, the senders instead send that many messages per second
 * in total (open loop, 10 ms ticks), for latency at a given load. The clock stops when every message
 * sent in the window is acked by its recipient. On a shared machine the wall-clock rate depends
 * on the load, so the server's CPU time over the window is reported too (messages per
 * server CPU-second = what one dedicated core sustains). Memory: RSS of the server before and after
 * `idle` users connect, subscribe to their inbox and sync.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { WebSocket } from 'ws';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const PAIRS = Number(args.get('pairs') ?? 200);
const WINDOW = Number(args.get('window') ?? 4);
const DURATION_S = Number(args.get('duration') ?? 10);
const PAYLOAD = Number(args.get('payload') ?? 64);
const IDLE = Number(args.get('idle') ?? 5000);
const SYNC = args.get('sync') ?? 'full';
/** Open loop: send this many messages per second in total (spread over the pairs) instead of keeping `window` in flight. */
const RATE = Number(args.get('rate') ?? 0);
/** Write a CPU profile of the server into this directory. */
const PROF = args.get('prof');
/** Herald nodes: 1, or 2 (senders on the first, recipients on the second). */
const NODES = Number(args.get('nodes') ?? 1);
const REDIS = args.get('redis');
const DATABASE = args.get('database');
if (NODES !== 1 && NODES !== 2) throw new Error('--nodes must be 1 or 2');
if (NODES > 1 && !REDIS) throw new Error('--nodes 2 needs --redis <url>');
const RUN_ID = randomBytes(4).toString('hex');
const REDIS_PREFIX = `herald-bench-im-${RUN_ID}:`;
const SCHEMA = `herald_bench_${RUN_ID}`;
/** The nodes' PostgreSQL URL, tagged so their backends can be found in pg_stat_activity. */
const DATABASE_URL = DATABASE ? `${DATABASE}${DATABASE.includes('?') ? '&' : '?'}application_name=${SCHEMA}` : undefined;
const WARMUP_MS = 2_000;
const SERVER = fileURLToPath(new URL('./im-server.ts', import.meta.url));

function pin(pid: number, cpu: string): void {
  try {
    execFileSync('taskset', ['-cp', cpu, String(pid)], { stdio: 'ignore' });
  } catch {
    // taskset missing: run unpinned
  }
}

/** Every server started, so none outlives a failed run. */
const children: ChildProcess[] = [];

async function startServer(db: string, cpu = '0'): Promise<{ child: ChildProcess; url: string }> {
  const engines = [...(REDIS ? ['--redis', REDIS, '--redis.prefix', REDIS_PREFIX] : []), ...(DATABASE_URL ? ['--database', DATABASE_URL, '--database.schema', SCHEMA] : [])];
  const child = spawn('taskset', ['-c', cpu, process.execPath, ...(PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`] : []), '--import', 'tsx', SERVER, db, SYNC, ...engines], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await Promise.race([done, new Promise((r) => setTimeout(r, 5_000))]);
  child.kill('SIGKILL');
}

/** A minimal native-protocol client: commands with ids, inbox pushes to a callback. */
class Client {
  readonly #pending = new Map<number, (r: any) => void>();
  #next = 1;
  onPush: (data: any) => void = () => undefined;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (buf) => {
      const f = JSON.parse(buf.toString());
      if (f.type === 'pub') this.onPush(f.data);
      else if (typeof f.id === 'number') {
        const cb = this.#pending.get(f.id);
        this.#pending.delete(f.id);
        cb?.(f);
      }
    });
  }
  static async connect(base: string, user: string): Promise<Client> {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/connection/websocket`, { perMessageDeflate: false });
    await new Promise((res, rej) => {
      ws.once('open', res);
      ws.once('error', rej);
    });
    const c = new Client(ws);
    await c.ok('connect', { user });
    await c.ok('subscribe', { channel: `inbox:${user}` });
    await c.ok('im.sync', { limit: 1 });
    return c;
  }
  call(cmd: string, params: Record<string, unknown>, cb: (r: any) => void): void {
    const id = this.#next++;
    this.#pending.set(id, cb);
    this.ws.send(JSON.stringify({ id, cmd, ...params }));
  }
  ok(cmd: string, params: Record<string, unknown> = {}): Promise<any> {
    return new Promise((resolve, reject) => this.call(cmd, params, (r) => (r.error ? reject(new Error(JSON.stringify(r.error))) : resolve(r.result))));
  }
}

/** CPU seconds (user + system) used so far by process `pid` (Linux /proc; clock ticks at 100 Hz). */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Pid of the machine's Redis server (for its CPU time), or undefined. */
function redisPid(): number | undefined {
  try {
    return Number(execFileSync('pidof', ['redis-server']).toString().trim().split(' ')[0]) || undefined;
  } catch {
    return undefined;
  }
}

/** A client of the bench's own PostgreSQL connection (schema drop, statistics), loaded only with --database. */
async function pgClient(): Promise<import('pg').Client> {
  const pg = ((await import('pg')) as unknown as { default: typeof import('pg') }).default;
  const c = new pg.Client({ connectionString: DATABASE });
  await c.connect();
  return c;
}

/** Backend pids of the nodes' PostgreSQL pools (by application_name). */
async function pgBackends(): Promise<number[]> {
  const c = await pgClient();
  try {
    const r = await c.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [SCHEMA]);
    return r.rows.map((x) => x.pid);
  } finally {
    await c.end();
  }
}

/** Rows inserted and updated per table of the run's schema so far. */
async function pgTableStats(): Promise<Record<string, { ins: number; upd: number }>> {
  const c = await pgClient();
  try {
    const r = await c.query<{ relname: string; ins: string; upd: string }>(
      'SELECT relname, n_tup_ins AS ins, n_tup_upd AS upd FROM pg_stat_user_tables WHERE schemaname = $1 ORDER BY relname',
      [SCHEMA],
    );
    return Object.fromEntries(r.rows.map((x) => [x.relname, { ins: Number(x.ins), upd: Number(x.upd) }]));
  } finally {
    await c.end();
  }
}

async function cleanup(): Promise<{ schemaDropped?: string; redisKeysDeleted?: number }> {
  const done: { schemaDropped?: string; redisKeysDeleted?: number } = {};
  if (DATABASE) {
    const c = await pgClient();
    try {
      // Only the schema this run created (its name is generated above, never user input).
      await c.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
      done.schemaDropped = SCHEMA;
    } finally {
      await c.end();
    }
  }
  if (REDIS) {
    const { Redis } = await import('ioredis');
    const r = new Redis(REDIS, { lazyConnect: true });
    await r.connect();
    let n = 0;
    let cursor = '0';
    do {
      const [next, keys] = await r.scan(cursor, 'MATCH', `${REDIS_PREFIX}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) n += await r.unlink(...keys);
    } while (cursor !== '0');
    r.disconnect();
    done.redisKeysDeleted = n;
  }
  return done;
}

function loadavg(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function rss(base: string): Promise<number> {
  const r = (await (await fetch(`${base}/api/stats`)).json()) as { memory: { rss: number } };
  return r.memory.rss;
}

async function memoryPhase(dir: string): Promise<{ users: number; bytesPerUser: number }> {
  const { child, url } = await startServer(join(dir, 'mem.db'));
  const warm = [];
  for (let i = 0; i < 200; i++) warm.push(await Client.connect(url, `w${i}`));
  await new Promise((r) => setTimeout(r, 1_000));
  const before = await rss(url);
  const clients: Client[] = [];
  for (let i = 0; i < IDLE; i += 100) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(100, IDLE - i) }, (_, k) => Client.connect(url, `idle${i + k}`)))));
  }
  await new Promise((r) => setTimeout(r, 2_000));
  const after = await rss(url);
  for (const c of [...clients, ...warm]) c.ws.terminate();
  await stop(child);
  return { users: IDLE, bytesPerUser: Math.round((after - before) / IDLE) };
}

async function loadPhase(dir: string) {
  // Two nodes share one SQLite file when there is no --database (as workers of one host do).
  const nodes: Array<{ child: ChildProcess; url: string }> = [];
  for (let n = 0; n < NODES; n++) nodes.push(await startServer(join(dir, 'load.db'), String(n)));
  const senderNode = nodes[0]!;
  const receiverNode = nodes[NODES - 1]!;
  const senders: Client[] = [];
  const receivers: Client[] = [];
  for (let i = 0; i < PAIRS; i++) {
    receivers.push(await Client.connect(receiverNode.url, `r${i}`));
    senders.push(await Client.connect(senderNode.url, `s${i}`));
  }
  const payload = 'x'.repeat(PAYLOAD);
  let measuring = false;
  let sending = true;
  let sentInWindow = 0;
  let ackedInWindow = 0;
  const storeLat: number[] = [];
  const e2eLat: number[] = [];
  let outstanding = 0;
  let sentTotal = 0;
  let clientIds = 0;
  const pacers: Array<() => void> = [];

  for (let i = 0; i < PAIRS; i++) {
    const s = senders[i]!;
    const r = receivers[i]!;
    const waiting = new Map<number, { t0: number; counted: boolean }>();
    let ackScheduled = false;
    let maxSeq = 0;
    // The sender acks its own inbox (the echo of its sends) once per turn, as the SDK does.
    let senderAckScheduled = false;
    let senderMax = 0;
    s.onPush = (ev) => {
      if (ev.type !== 'message' || typeof ev.seq !== 'number') return;
      senderMax = Math.max(senderMax, ev.seq);
      if (senderAckScheduled) return;
      senderAckScheduled = true;
      setImmediate(() => {
        senderAckScheduled = false;
        s.call('im.ack', { seq: senderMax }, () => undefined);
      });
    };
    r.onPush = (ev) => {
      if (ev.type !== 'message' || typeof ev.seq !== 'number') return;
      if (!waiting.has(ev.seq)) waiting.set(ev.seq, { t0: ev.message.data.t, counted: ev.message.data.m });
      maxSeq = Math.max(maxSeq, ev.seq);
      if (ackScheduled) return;
      ackScheduled = true;
      setImmediate(() => {
        ackScheduled = false;
        r.call('im.ack', { seq: maxSeq }, (res) => {
          const now = performance.now();
          const upTo = res.result.acked as number;
          for (const [seq, w] of waiting) {
            if (seq > upTo) continue;
            waiting.delete(seq);
            outstanding--;
            if (w.counted && measuring) {
              e2eLat.push(now - w.t0);
              ackedInWindow++;
            }
          }
        });
      });
    };
    const sendOne = (closedLoop: boolean): void => {
      if (!sending) return;
      const t0 = performance.now();
      const counted = measuring;
      if (counted) sentInWindow++;
      sentTotal++;
      outstanding++;
      s.call('im.send', { to: `r${i}`, clientId: `k${clientIds++}`, data: { t: t0, m: counted, p: payload } }, (res) => {
        if (res.error) {
          console.error(JSON.stringify(res.error));
          return;
        }
        if (counted && measuring) storeLat.push(performance.now() - t0);
        if (closedLoop) sendOne(true);
      });
    };
    if (RATE > 0) pacers.push(() => sendOne(false));
    else for (let w = 0; w < WINDOW; w++) sendOne(true);
  }
  // Open loop: every 10 ms, RATE / 100 sends, round-robin over the pairs.
  let pacer: NodeJS.Timeout | undefined;
  if (RATE > 0) {
    let next = 0;
    let due = 0;
    pacer = setInterval(() => {
      due += RATE / 100;
      for (; due >= 1; due--) pacers[next++ % pacers.length]!();
    }, 10);
  }
  await new Promise((r) => setTimeout(r, WARMUP_MS));
  const pgPids = DATABASE ? await pgBackends() : [];
  const redis = REDIS ? redisPid() : undefined;
  const sumCpu = (pids: Array<number | undefined>) => pids.reduce((s: number, p) => s + cpuSeconds(p), 0);
  const loadStart = loadavg();
  measuring = true;
  const start = performance.now();
  const cpuStart = nodes.map((n) => cpuSeconds(n.child.pid));
  const pgCpuStart = sumCpu(pgPids);
  const redisCpuStart = cpuSeconds(redis);
  await new Promise((r) => setTimeout(r, DURATION_S * 1000));
  sending = false;
  if (pacer) clearInterval(pacer);
  const drainDeadline = Date.now() + 20_000;
  while (ackedInWindow < sentInWindow && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 5));
  const elapsed = (performance.now() - start) / 1000;
  const nodeCpu = nodes.map((n, k) => cpuSeconds(n.child.pid) - cpuStart[k]!);
  const serverCpu = nodeCpu.reduce((a, b) => a + b, 0);
  const pgCpu = sumCpu(pgPids) - pgCpuStart;
  const redisCpu = cpuSeconds(redis) - redisCpuStart;
  const loadEnd = loadavg();
  measuring = false;
  const serverRss = await Promise.all(nodes.map((n) => rss(n.url)));
  for (const c of [...senders, ...receivers]) c.ws.terminate();
  await Promise.all(nodes.map((n) => stop(n.child)));
  // PostgreSQL publishes table statistics up to a second after the transaction.
  const tables = DATABASE ? (await new Promise((r) => setTimeout(r, 1_500)), await pgTableStats()) : undefined;
  storeLat.sort((a, b) => a - b);
  e2eLat.sort((a, b) => a - b);
  return {
    sent: sentInWindow,
    acked: ackedInWindow,
    seconds: Number(elapsed.toFixed(2)),
    msgsPerSec: Math.round(ackedInWindow / elapsed),
    // Load-independent capacity: messages (send + delivery + ack + receipts) per CPU-second of the server (all nodes).
    serverCpuSeconds: Number(serverCpu.toFixed(2)),
    ...(NODES > 1 ? { nodeCpuSeconds: nodeCpu.map((c) => Number(c.toFixed(2))) } : {}),
    msgsPerServerCpuSecond: Math.round(ackedInWindow / serverCpu),
    ...(DATABASE ? { postgresBackends: pgPids.length, postgresCpuSeconds: Number(pgCpu.toFixed(2)) } : {}),
    ...(REDIS ? { redisCpuSeconds: Number(redisCpu.toFixed(2)) } : {}),
    sendAckMs: { p50: +pct(storeLat, 50).toFixed(2), p99: +pct(storeLat, 99).toFixed(2) },
    e2eAckedMs: { p50: +pct(e2eLat, 50).toFixed(2), p99: +pct(e2eLat, 99).toFixed(2), max: +(e2eLat.at(-1) ?? NaN).toFixed(2) },
    serverRssMB: NODES > 1 ? serverRss.map((b) => Math.round(b / 1e6)) : Math.round(serverRss[0]! / 1e6),
    lost: outstanding > 0 ? outstanding : 0,
    loadavg: { start: loadStart, end: loadEnd },
    // Rows written per message over the whole run (warm-up included), from pg_stat_user_tables.
    ...(tables
      ? {
          sentTotal,
          postgresRowsPerMessage: Object.fromEntries(
            Object.entries(tables).map(([t, v]) => [t, { ins: +(v.ins / sentTotal).toFixed(2), upd: +(v.upd / sentTotal).toFixed(2) }]),
          ),
        }
      : {}),
  };
}

// With two nodes on two cores the clients cannot have a core of their own.
if (NODES === 1) pin(process.pid, '1');
const dir = mkdtempSync(join(tmpdir(), 'herald-bench-im-'));
try {
  const config = {
    pairs: PAIRS,
    ...(RATE > 0 ? { rate: RATE } : { window: WINDOW }),
    durationS: DURATION_S,
    payloadBytes: PAYLOAD,
    storeSync: SYNC,
    nodes: NODES,
    store: DATABASE ? `postgres (schema ${SCHEMA})` : 'sqlite',
    ...(REDIS ? { redisPrefix: REDIS_PREFIX } : {}),
    node: process.version,
    started: new Date().toISOString(),
  };
  const load = await loadPhase(dir);
  const memory = IDLE > 0 ? await memoryPhase(dir) : undefined;
  console.log(JSON.stringify({ config, load, memory }, null, 2));
} finally {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  console.error(JSON.stringify(await cleanup()));
}
