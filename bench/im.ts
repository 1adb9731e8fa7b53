/**
 * IM macro benchmark: durable 1:1 messages per second on one node, with latency from send to
 * stored (sender ack) and from send to stored → delivered → acked (the recipient's cumulative
 * ack answered), and server memory per connected IM user.
 *
 *   node --import tsx bench/im.ts [--pairs 200] [--window 4] [--duration 10] [--payload 64]
 *                                 [--idle 5000] [--sync full|normal] [--rate <msgs/s>] [--prof <dir>]
 *
 * The server runs in its own process pinned to core 0; this process (all clients) to core 1.
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
const WARMUP_MS = 2_000;
const SERVER = fileURLToPath(new URL('./im-server.ts', import.meta.url));

function pin(pid: number, cpu: string): void {
  try {
    execFileSync('taskset', ['-cp', cpu, String(pid)], { stdio: 'ignore' });
  } catch {
    // taskset missing: run unpinned
  }
}

async function startServer(db: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn('taskset', ['-c', '0', process.execPath, ...(PROF ? ['--cpu-prof', `--cpu-prof-dir=${PROF}`] : []), '--import', 'tsx', SERVER, db, SYNC], { stdio: ['ignore', 'pipe', 'inherit'] });
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
  const { child, url } = await startServer(join(dir, 'load.db'));
  const senders: Client[] = [];
  const receivers: Client[] = [];
  for (let i = 0; i < PAIRS; i++) {
    receivers.push(await Client.connect(url, `r${i}`));
    senders.push(await Client.connect(url, `s${i}`));
  }
  const payload = 'x'.repeat(PAYLOAD);
  let measuring = false;
  let sending = true;
  let sentInWindow = 0;
  let ackedInWindow = 0;
  const storeLat: number[] = [];
  const e2eLat: number[] = [];
  let outstanding = 0;
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
  measuring = true;
  const start = performance.now();
  const cpuStart = cpuSeconds(child.pid);
  await new Promise((r) => setTimeout(r, DURATION_S * 1000));
  sending = false;
  if (pacer) clearInterval(pacer);
  const drainDeadline = Date.now() + 20_000;
  while (ackedInWindow < sentInWindow && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 5));
  const elapsed = (performance.now() - start) / 1000;
  const serverCpu = cpuSeconds(child.pid) - cpuStart;
  measuring = false;
  const serverRss = await rss(url);
  for (const c of [...senders, ...receivers]) c.ws.terminate();
  await stop(child);
  storeLat.sort((a, b) => a - b);
  e2eLat.sort((a, b) => a - b);
  return {
    sent: sentInWindow,
    acked: ackedInWindow,
    seconds: Number(elapsed.toFixed(2)),
    msgsPerSec: Math.round(ackedInWindow / elapsed),
    // Load-independent capacity: messages (send + delivery + ack + receipts) per CPU-second of the server.
    serverCpuSeconds: Number(serverCpu.toFixed(2)),
    msgsPerServerCpuSecond: Math.round(ackedInWindow / serverCpu),
    sendAckMs: { p50: +pct(storeLat, 50).toFixed(2), p99: +pct(storeLat, 99).toFixed(2) },
    e2eAckedMs: { p50: +pct(e2eLat, 50).toFixed(2), p99: +pct(e2eLat, 99).toFixed(2), max: +(e2eLat.at(-1) ?? NaN).toFixed(2) },
    serverRssMB: Math.round(serverRss / 1e6),
    lost: outstanding > 0 ? outstanding : 0,
  };
}

pin(process.pid, '1');
const dir = mkdtempSync(join(tmpdir(), 'herald-bench-im-'));
try {
  const config = { pairs: PAIRS, ...(RATE > 0 ? { rate: RATE } : { window: WINDOW }), durationS: DURATION_S, payloadBytes: PAYLOAD, storeSync: SYNC, node: process.version };
  const load = await loadPhase(dir);
  const memory = IDLE > 0 ? await memoryPhase(dir) : undefined;
  console.log(JSON.stringify({ config, load, memory }, null, 2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
