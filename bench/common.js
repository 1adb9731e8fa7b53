// Helpers shared by the multi-process benchmarks (bench/cluster.js, bench/scale.js): the C
// load client driven over its stdin/stdout protocol, a keep-alive HTTP publisher, /proc
// readers and process control. bench/run.js predates this file and keeps its own copies.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, existsSync, statSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const BUILD_DIR = path.join(ROOT, 'bench', '.tmp');
export const RESULTS_DIR = path.join(ROOT, 'bench', 'results');
const LOADGEN_SRC = path.join(ROOT, 'bench', 'loadgen', 'loadgen.c');
export const LOADGEN_BIN = path.join(BUILD_DIR, 'loadgen');
/** Connections per loadgen process; each process must stay under the 20,000 open-file limit. */
export const MAX_CONNS_PER_LOADGEN = 15_000;
/** Connections per loopback source address (the ephemeral range here is 28k ports). */
export const CONNS_PER_SOURCE_ADDR = 15_000;
/**
 * API key every benchmarked Herald is started with (HERALD_API_KEY) and every publisher sends:
 * loopback clients are not trusted without development mode, so the publisher authenticates like
 * a backend does. Peers ignore the header.
 */
export const BENCH_API_KEY = 'herald-bench-api-key-0123456789';
/** Environment of a benchmarked Herald: the caller's, with the bench's API key and a log level. */
export const heraldEnv = (logLevel = 'warn') => ({ ...process.env, HERALD_LOG_LEVEL: logLevel, HERALD_API_KEY: BENCH_API_KEY });
const NICE = -10;

/** Every child process started, so that an interrupted run can stop them by pid. */
export const children = new Set();

/** Spawn `cmd` (pinned to `cpu` unless it is null) at the bench's priority; the pid is cmd's. */
export function spawnAt(cpu, cmd, args, options) {
  const canRaise = process.getuid?.() === 0;
  const pin = cpu === null ? [] : ['taskset', '-c', cpu];
  const child = spawn('nice', [...(canRaise ? ['-n', String(NICE)] : ['-n', '0']), ...pin, cmd, ...args], options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Raise this process's priority (and its autogroup's) and stop every child on SIGINT/SIGTERM. */
export function benchProcessSetup() {
  if (process.getuid?.() === 0) {
    os.setPriority(NICE);
    try { execFileSync('sh', ['-c', `echo ${NICE} > /proc/self/autogroup`]); } catch { /* no autogroup */ }
  }
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      for (const c of children) c.kill('SIGTERM');
      console.error(`bench: ${sig}, stopping ${children.size} child processes`);
      setTimeout(() => {
        for (const c of children) c.kill('SIGKILL');
        process.exit(130);
      }, 3_000);
    });
  }
}

/** Wall-clock microseconds since the epoch (same clock as loadgen's CLOCK_REALTIME). */
export const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);

export function rssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.once('error', reject);
  });
}

export function childPids(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * CPU seconds (user + system) used so far by a process: the scheduler's own nanosecond count of
 * the time each of its threads ran (`/proc/<pid>/task/<tid>/schedstat`), so that the CPU of an
 * idle server (a few ms a second) is measured, not sampled in 10 ms clock ticks. Falls back to
 * the tick counts of `/proc/<pid>/stat` where schedstat is missing.
 */
export function cpuSecs(pid) {
  try {
    let ns = 0;
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        // the thread ended meanwhile
      }
    }
    if (ns > 0) return ns / 1e9;
  } catch {
    // no schedstat here: clock ticks below
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

export const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');

export function waitPort(port, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(); });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`port ${port} did not open`));
        else setTimeout(attempt, 100);
      });
    };
    attempt();
  });
}

export function waitExit(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => { clearTimeout(t); resolve(true); });
  });
}

export async function stopChild(child, signal = 'SIGTERM', graceMs = 10_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill(signal);
  if (!(await waitExit(child, graceMs))) {
    child.kill('SIGKILL');
    await waitExit(child, 5_000);
  }
}

export function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    return `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || 'unknown';
  }
}

export function buildLoadgen() {
  mkdirSync(BUILD_DIR, { recursive: true });
  const fresh = existsSync(LOADGEN_BIN) && statSync(LOADGEN_BIN).mtimeMs > statSync(LOADGEN_SRC).mtimeMs;
  if (!fresh) execFileSync('cc', ['-O2', '-Wall', '-o', LOADGEN_BIN, LOADGEN_SRC], { stdio: 'inherit' });
}

/** Delete this run's Redis keys (SCAN + UNLINK under the run's own prefix; never FLUSHALL). */
export function redisCleanup(prefix) {
  return sh('sh', ['-c', `redis-cli --scan --pattern '${prefix}*' | xargs -r -n 500 redis-cli unlink | awk '{s+=$1} END {print s+0}'`]);
}

let nextSourceAddr = 2; // 127.0.0.2, 127.0.0.3, … fresh ones for every batch

/** One loadgen process (bench/loadgen/loadgen.c): `conns` connections following `spec`. */
export class Loadgen {
  constructor({ port, spec, conns, idBase, label, concurrency, cpu = null, maxSecs = 900 }) {
    this.label = label;
    this.conns = conns;
    // loadgen picks source address src-base + (idBase + i) / per-src: shift src-base so that this
    // process starts on a fresh address, and reserve one more for a batch that straddles a boundary.
    const srcBase = nextSourceAddr;
    nextSourceAddr += Math.ceil(conns / CONNS_PER_SOURCE_ADDR) + 1;
    const srcArg = srcBase - Math.floor(idBase / CONNS_PER_SOURCE_ADDR);
    if (srcArg < 1) throw new Error('loadgen source address base below 127.0.0.1');
    const args = ['--port', String(port), '--path', spec.path, '--conns', String(conns),
      '--id-base', String(idBase), '--src-base', String(srcArg),
      '--per-src', String(CONNS_PER_SOURCE_ADDR), '--concurrency', String(concurrency), '--pre', String(spec.pre ?? 0),
      '--max-secs', String(maxSecs), '--label', label];
    for (const f of spec.send ?? []) args.push('--send', f);
    if (spec.ping) args.push('--ping', spec.ping, '--pong', spec.pong);
    if (spec.mode) args.push('--mode', spec.mode);
    if (spec.pipeline) args.push('--pipeline', '1');
    this.child = spawnAt(cpu, LOADGEN_BIN, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.stderr = '';
    this.child.stderr.on('data', (d) => { this.stderr = (this.stderr + d).slice(-2000); });
    this.waiters = [];
    this.readyEvent = null;
    this.readyWaiters = [];
    readline.createInterface({ input: this.child.stdout }).on('line', (line) => {
      let msg;
      try { msg = JSON.parse(line); } catch { return; }
      if (msg.event === 'ready') {
        this.readyEvent = msg;
        for (const w of this.readyWaiters.splice(0)) w(msg);
      } else {
        const w = this.waiters.shift();
        if (w) w(msg);
      }
    });
    this.child.on('exit', () => {
      for (const w of this.waiters.splice(0)) w(null);
      for (const w of this.readyWaiters.splice(0)) w(null);
    });
  }

  ready(timeoutMs) {
    if (this.readyEvent) return Promise.resolve(this.readyEvent);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(null), timeoutMs);
      this.readyWaiters.push((m) => { clearTimeout(t); resolve(m); });
    });
  }

  command(cmd) {
    if (this.child.exitCode !== null) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiters.push(resolve);
      this.child.stdin.write(`${cmd}\n`);
    });
  }

  async quit() {
    if (this.child.exitCode === null) this.child.stdin.end('quit\n');
    if (!(await waitExit(this.child, 10_000))) await stopChild(this.child, 'SIGKILL');
  }
}

/** Open `conns` connections (ids idBase…) over as many loadgen processes as the file limit needs. */
export async function openConnections({ port, spec, conns, idBase = 0, concurrency = 256, tag, cpu = null, timeoutMs = 180_000, maxSecs }) {
  const procs = Math.ceil(conns / MAX_CONNS_PER_LOADGEN);
  const gens = [];
  for (let p = 0, base = idBase; p < procs; p++) {
    const n = Math.floor(conns / procs) + (p < conns % procs ? 1 : 0);
    gens.push(new Loadgen({ port, spec, conns: n, idBase: base, label: `${tag}-${p}`, concurrency: Math.max(8, Math.ceil(concurrency / procs)), cpu, maxSecs }));
    base += n;
  }
  const readies = await Promise.all(gens.map((g) => g.ready(timeoutMs)));
  return { gens, readies, ...summarizeReady(readies, conns) };
}

export function summarizeReady(readies, conns) {
  const ok = readies.filter(Boolean);
  const ready = ok.reduce((s, r) => s + r.ready, 0);
  const t0 = ok.length ? Math.min(...ok.map((r) => r.t_start_us)) : 0;
  const t1 = ok.length ? Math.max(...ok.map((r) => r.t_ready_us)) : 0;
  const errors = [...new Set(ok.map((r) => r.error).filter(Boolean))];
  const secs = (t1 - t0) / 1e6;
  // Accept rate: until every connection finished its setup script (connect/subscribe replies);
  // upgrade rate: until every WebSocket upgrade completed (null when some never did).
  const allUpgraded = ok.length > 0 && ok.length === readies.length && ok.every((r) => r.t_connected_us > 0);
  const th = allUpgraded ? Math.max(...ok.map((r) => r.t_connected_us)) : 0;
  return {
    ready,
    failed: conns - ready,
    secs: +secs.toFixed(2),
    acceptPerSec: ok.length && secs > 0 ? Math.round(ready / secs) : 0,
    upgradePerSec: th > t0 ? Math.round(conns / ((th - t0) / 1e6)) : null,
    errors,
  };
}

export async function statsAll(gens, cmd = 'stats') {
  return (await Promise.all(gens.map((g) => g.command(cmd)))).filter(Boolean);
}

/** Merge loadgen latency histograms: p50/p99/p99.9/max in ms. */
export function mergeLatency(stats) {
  const hist = new Map();
  let count = 0;
  let max = 0;
  let res = 10;
  for (const s of stats) {
    res = s.hist_res_us ?? res;
    max = Math.max(max, s.lat_max_us);
    for (const [b, c] of s.hist ?? []) { hist.set(b, (hist.get(b) ?? 0) + c); count += c; }
  }
  const keys = [...hist.keys()].sort((a, b) => a - b);
  const pct = (p) => {
    let acc = 0;
    for (const k of keys) { acc += hist.get(k); if (acc >= count * p) return (k * res) / 1000; }
    return 0;
  };
  return { samples: count, p50Ms: pct(0.5), p99Ms: pct(0.99), p999Ms: pct(0.999), maxMs: max / 1000 };
}

/** Poll loadgens until `expected` deliveries arrived, or nothing moved for `idleMs`. */
export async function drain(gens, expected, idleMs = 5_000, timeoutMs = 120_000) {
  const t0 = Date.now();
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const st = await statsAll(gens);
    const got = st.reduce((s, x) => s + x.deliveries, 0);
    if (got >= expected) return got;
    if (got !== last) { last = got; lastChange = Date.now(); }
    if (Date.now() - lastChange > idleMs || Date.now() - t0 > timeoutMs) return got;
    await sleep(50);
  }
}

/**
 * Keep-alive HTTP publisher. `pub.path(channel)` and `pub.body(channel, data)` adapt it to a
 * server; every payload carries the send time in µs (`bt`) that loadgen turns into latency.
 */
export function makePublisher(port, pub, payloadBytes, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const pad = 'x'.repeat(payloadBytes);
  let seq = 0;
  let errors = 0;
  let sent = 0;
  const one = (channel, attempt = 0) => new Promise((resolve) => {
    const body = pub.body(channel, { bt: nowUs(), seq: seq++, pad });
    const req = http.request({ host: '127.0.0.1', port, path: pub.path(channel), method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `apikey ${BENCH_API_KEY}` } }, (res) => {
      if (res.statusCode >= 300) errors++;
      else sent++;
      res.resume();
      res.on('end', resolve);
    });
    req.setNoDelay(true);
    req.on('error', () => {
      if (attempt < 2) one(channel, attempt + 1).then(resolve);
      else { errors++; resolve(); }
    });
    req.end(body);
  });
  return {
    one,
    /** `n` publications to `channel`, `concurrency` in flight. */
    async burst(channel, n) {
      let i = 0;
      const worker = async () => { while (i < n) { i++; await one(channel); } };
      await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
    },
    /** Publications at a fixed rate for `secs` seconds to `channel`. */
    async paced(channel, ratePerSec, secs) {
      const n = Math.round(ratePerSec * secs);
      const t0 = performance.now();
      const inflight = [];
      for (let i = 0; i < n; i++) {
        const wait = t0 + (i * 1000) / ratePerSec - performance.now();
        if (wait > 0) await sleep(wait);
        inflight.push(one(channel));
      }
      await Promise.all(inflight);
      return n;
    },
    /**
     * Closed loop for `secs` seconds: `window` publications in flight, each to the next
     * channel of `channels` (round robin). Resolves with the number answered 2xx.
     */
    async closedLoop(channels, window, secs) {
      const stopAt = performance.now() + secs * 1000;
      const before = sent;
      let k = 0;
      const worker = async () => { while (performance.now() < stopAt) await one(channels[k++ % channels.length]); };
      await Promise.all(Array.from({ length: window }, worker));
      return sent - before;
    },
    get errors() { return errors; },
    get sent() { return sent; },
    close() { agent.destroy(); },
  };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
};

export function machineInfo() {
  return {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memTotalGb: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel: os.release(),
    node: process.version,
    redis: sh('sh', ['-c', "redis-cli info server | grep redis_version | tr -d '\\r'"]),
    nginx: sh('sh', ['-c', 'nginx -v 2>&1']).replace('nginx version: ', ''),
    nchan: sh('dpkg-query', ['-W', '-f=${Version}', 'libnginx-mod-nchan']),
    commit: sh('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD']),
    dirtySrcFiles: sh('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).length,
  };
}
