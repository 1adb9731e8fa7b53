#!/usr/bin/env node
// Failover benchmark (issue #7): 3 Herald nodes + `herald dispatch` on Redis, N clients of the
// real SDK (clients/js, Node build, `ws`) that ask the dispatcher for a node and subscribe to a
// channel shared by a group of clients; a publisher sends numbered messages at a steady rate
// through a surviving node's HTTP API for the whole run; then the node holding about a third of
// the clients is killed with SIGKILL.
//
//   npm run build --prefix clients/js
//   node bench/failover.js [--clients 1000] [--group 50] [--rate 100] [--heartbeat-ms 500]
//                          [--warm 5] [--after 20] [--client-procs 2] [--concurrency 100]
//                          [--min-reconnect-delay-ms 200] [--ws-sync-events 1]
//
// Measured per client of the killed node: time from the kill until the SDK reports the channel
// subscribed again on another node (p50/p99/max, how many within 10 s); for every client,
// whether the application saw every numbered message of its channel exactly once and in order
// (gaps, duplicates, missing at the end); and the dispatcher's view: time from the kill until
// `GET /dispatch` stops handing out the dead node (as primary and as backup).
// Clients run in `client-procs` child processes (this file with --client-worker), so that the
// publisher and the dispatcher probe keep their own event loop. Every wait is bounded.
// Results: JSON in bench/results/, markdown on stdout. Never part of `npm test`.
import { fork } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH_API_KEY } from './common.js';

const SELF = fileURLToPath(import.meta.url);
const TEN_S = 10_000;
/** Inclusive CPU of these frames (function name + file) in the storm profiles. */
const PROFILE_MARKS = {
  dispatch: /Dispatcher|dispatcher\.js/, upgrade: /handleUpgrade|completeUpgrade|onServerUpgrade|onupgrade/i, wsFrames: /Receiver|getData|sendFrame/,
  subscribe: /subscribe/i, history: /history|since|recover/i, redis: /ioredis|redis/i, json: /JSON/, gc: /garbage/,
};

// ---------------------------------------------------------------- client worker

/** Child process: run `users` SDK clients, report their state on request. */
async function clientWorker() {
  const { HeraldClient, ImClient } = await import('../clients/js/dist/index.js');
  const WS = (await import('ws')).default;
  const clients = [];
  // ws ≥ 8.17 emits every message of one TCP read synchronously (no microtask in between), a
  // browser one message per task; --ws-sync-events 0 asks ws for the browser's behaviour.
  let WebSocket = WS;
  let killAt = 0;
  process.on('message', async (msg) => {
    if (msg.cmd === 'start') {
      const { dispatcher, users, group, concurrency, minReconnectDelayMs, wsSyncEvents, imUsers, localAddress, openTimeoutMs } = msg;
      // One loopback source address per client process: 28k ephemeral ports per (source, destination) pair.
      WebSocket = class extends WS {
        constructor(url, protocols, o) { super(url, protocols, { ...o, localAddress, ...(wsSyncEvents ? {} : { allowSynchronousEvents: false }) }); }
      };
      // The dispatcher over a bounded keep-alive pool from the same source address (a storm of
      // fetches through the default pool would open one socket each and exhaust the dispatcher's files).
      const agent = new http.Agent({ keepAlive: true, maxSockets: 64, localAddress });
      const getDispatch = (url) => new Promise((resolve, reject) => {
        const req = http.get(url, { agent, timeout: 10_000 }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => { body += d; });
          res.on('end', () => resolve({ ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, json: async () => JSON.parse(body) }));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('dispatch timeout')));
        req.on('error', reject);
      });
      let next = 0;
      let failed = 0;
      const t0 = Date.now();
      const one = async (i) => {
        const user = users[i];
        const channel = `g${Math.floor(Number(user.slice(1)) / group)}`;
        // The SDK's own fetch, timed: when the dispatcher answered the first time after the kill.
        const fetch = (url) => getDispatch(url).then((res) => {
          if (c.disconnectedAt && !c.dispatchedAt) c.dispatchedAt = Date.now();
          return res;
        });
        const client = new HeraldClient({ dispatcher, user, WebSocket, fetch, transports: ['websocket'],
          ...(minReconnectDelayMs ? { minReconnectDelayMs } : {}), ...(openTimeoutMs ? { openTimeoutMs } : {}) });
        const c = { user, channel, client, node: '', expect: 1, got: 0, gaps: 0, gapMsgs: 0, dups: 0, lastN: 0,
          disconnects: 0, gapLog: [], disconnectedAt: 0, reconnectingAt: 0, dispatchedAt: 0, connectedAt: 0, resubAt: 0, resubNode: '', recoveredFalse: 0, reconnectAttempts: 0, connectedNodes: [] };
        clients.push(c);
        client.on('connected', (info) => { if (c.disconnectedAt && !c.connectedAt) c.connectedAt = Date.now(); c.node = info.node; c.connectedNodes.push(info.node); });
        client.on('disconnected', () => { c.disconnects++; if (!c.disconnectedAt) c.disconnectedAt = Date.now(); });
        // IM inbox (the first `imUsers` users): system messages numbered per user, checked like the channel.
        c.im = Number(user.slice(1)) < imUsers ? { expect: 1, got: 0, gaps: 0, gapMsgs: 0, dups: 0, lastN: 0 } : null;
        client.on('reconnecting', () => { if (!c.reconnectingAt) c.reconnectingAt = Date.now(); c.reconnectAttempts++; });
        const sub = client.subscribe(channel);
        sub.on('subscribed', (e) => {
          if (e.resumed && c.disconnectedAt && !c.resubAt) { c.resubAt = Date.now(); c.resubNode = c.node; }
          if (!e.recovered) c.recoveredFalse++;
        });
        sub.on('publication', (p) => {
          const n = p.data.n;
          c.got++;
          if (n === c.expect) c.expect++;
          else if (n > c.expect) { if (c.gapLog.length < 3) c.gapLog.push({ expect: c.expect, n, offset: p.offset, at: Date.now() - killAt, afterResub: !!c.resubAt, disconnected: c.disconnects }); c.gaps++; c.gapMsgs += n - c.expect; c.expect = n + 1; }
          else c.dups++;
          c.lastN = Math.max(c.lastN, n);
        });
        try {
          await client.connect();
          if (c.im) {
            const im = new ImClient(client);
            im.on('message', ({ message }) => {
              const n = message.data?.n;
              if (typeof n !== 'number') return;
              const s = c.im;
              s.got++;
              if (n === s.expect) s.expect++;
              else if (n > s.expect) { s.gaps++; s.gapMsgs += n - s.expect; s.expect = n + 1; }
              else s.dups++;
              s.lastN = Math.max(s.lastN, n);
            });
            await im.start();
          }
          await Promise.race([sub.ready(), sleep(30_000).then(() => { throw new Error('subscribe timeout'); })]);
        } catch {
          failed++;
        }
      };
      const workers = Array.from({ length: concurrency }, async () => { while (next < users.length) await one(next++); });
      await Promise.all(workers);
      process.send({ ev: 'ready', n: users.length, failed, secs: (Date.now() - t0) / 1000,
        nodes: clients.map((c) => c.node) });
    } else if (msg.cmd === 'kill-at') {
      killAt = msg.at;
    } else if (msg.cmd === 'progress') {
      let down = 0;
      let back = 0;
      let attempts = 0;
      for (const c of clients) {
        if (c.disconnectedAt) down++;
        if (c.resubAt) back++;
        attempts += c.reconnectAttempts;
      }
      process.send({ ev: 'progress', down, back, attempts });
    } else if (msg.cmd === 'report') {
      process.send({ ev: 'report', killAt, clients: clients.map(({ client, ...c }) => ({ ...c, state: client.state, nodeNow: client.info?.node ?? '' })) });
    } else if (msg.cmd === 'quit') {
      for (const c of clients) c.client.disconnect();
      setTimeout(() => process.exit(0), 200);
    }
  });
  process.send({ ev: 'up' });
}

// ---------------------------------------------------------------- orchestration

function parseArgs(argv) {
  const opts = { clients: 1_000, group: 50, rate: 100, heartbeatMs: 500, warm: 5, after: 20, clientProcs: 2, concurrency: 100,
    minReconnectDelayMs: 0, wsSyncEvents: 1, imUsers: 0, imRate: 20, portBase: 21_000 + Math.floor(Math.random() * 500) * 8,
    nodes: 3, workers: 1, profile: 0, openTimeoutMs: 0, stormTimeout: 60 };
  const keys = { '--clients': 'clients', '--group': 'group', '--rate': 'rate', '--heartbeat-ms': 'heartbeatMs', '--warm': 'warm',
    '--after': 'after', '--client-procs': 'clientProcs', '--concurrency': 'concurrency', '--port-base': 'portBase',
    '--min-reconnect-delay-ms': 'minReconnectDelayMs', '--ws-sync-events': 'wsSyncEvents', '--im-users': 'imUsers', '--im-rate': 'imRate',
    '--nodes': 'nodes', '--workers': 'workers', '--profile': 'profile', '--open-timeout-ms': 'openTimeoutMs', '--storm-timeout': 'stormTimeout' };
  for (let i = 0; i < argv.length; i += 2) {
    const k = keys[argv[i]];
    const v = Number(argv[i + 1]);
    if (!k || !Number.isFinite(v) || v < 0) throw new Error(`bad option ${argv[i]} ${argv[i + 1] ?? ''}`);
    opts[k] = v;
  }
  return opts;
}

const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.min(s.length - 1, Math.ceil(p * s.length) - 1))];
};

function getJson(url) {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2_000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => { try { resolve({ status: res.statusCode, body: JSON.parse(body) }); } catch { resolve({ status: res.statusCode, body: {} }); } });
    });
    req.on('error', () => resolve({ status: 0, body: {} }));
    req.on('timeout', () => req.destroy());
  });
}

/**
 * Numbered messages at `rate`/s over `channels` (round robin), at most one in flight per channel
 * so that the numbers of a channel are published in order; a failed publish is retried with the
 * same number. `last[ch]` is the highest number acknowledged.
 */
function startPublisher(port, channels, rate, request = (ch, n) => ({ path: '/api/publish', body: { channel: ch, data: { n, t: Date.now() } } })) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const last = Object.fromEntries(channels.map((c) => [c, 0]));
  const busy = new Set();
  let sent = 0;
  let errors = 0;
  let skipped = 0;
  let lastError = '';
  let stopped = false;
  let k = 0;
  const post = (ch, n) => new Promise((resolve) => {
    const r = request(ch, n);
    const body = JSON.stringify(r.body);
    const req = http.request({ host: '127.0.0.1', port, path: r.path, method: 'POST', agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `apikey ${BENCH_API_KEY}` } }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        if (res.statusCode >= 300) lastError = `${res.statusCode} ${text.slice(0, 200)}`;
        resolve(res.statusCode < 300);
      });
    });
    req.on('error', () => resolve(false));
    req.end(body);
  });
  const publish = async (ch) => {
    busy.add(ch);
    const n = last[ch] + 1;
    for (let attempt = 0; attempt < 20; attempt++) {
      if (await post(ch, n)) { last[ch] = n; sent++; break; }
      errors++;
      await sleep(50);
    }
    busy.delete(ch);
  };
  const t0 = performance.now();
  const done = (async () => {
    let due = 0;
    while (!stopped) {
      const target = Math.floor(((performance.now() - t0) / 1000) * rate);
      for (; due < target; due++) {
        const ch = channels[k++ % channels.length];
        if (busy.has(ch)) { skipped++; continue; }
        void publish(ch);
      }
      await sleep(5);
    }
    while (busy.size) await sleep(10);
  })();
  return {
    last, get sent() { return sent; }, get errors() { return errors; }, get lastError() { return lastError; }, get skipped() { return skipped; },
    async stop() { stopped = true; await done; agent.destroy(); },
  };
}

async function main() {
  const { ROOT, RESULTS_DIR, benchProcessSetup, loadavg, machineInfo, redisCleanup, sh, spawnAt, stopChild, waitPort, childPids, cpuSecs } = await import('./common.js');
  const opts = parseArgs(process.argv.slice(2));
  benchProcessSetup();
  const HERALD_BIN = path.join(ROOT, 'bin/herald.js');
  const REDIS_URL = 'redis://127.0.0.1:6379';
  const prefix = `herald-failover-${process.pid}-${Math.random().toString(36).slice(2, 8)}:`;
  // IM needs the shared store: PostgreSQL, a schema of this run's own (dropped at the end).
  // node-postgres needs the user in the URL when PGUSER is not set (psql defaults to the OS user).
  const PG_URL = process.env.HERALD_FO_DATABASE_URL ?? `postgres://${os.userInfo().username}@127.0.0.1:5432/test`;
  const schema = `herald_fo_${Math.random().toString(36).slice(2, 10)}`;
  const scratch = path.join(os.tmpdir(), `herald-failover-bench-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  const started = new Date().toISOString();
  const machine = machineInfo();
  const load = { before: loadavg() };
  console.error(`failover bench: ${opts.clients} clients, groups of ${opts.group}, ${opts.rate} msgs/s, heartbeat ${opts.heartbeatMs} ms; ` +
    `Redis prefix ${prefix}; load ${load.before}`);

  const tail = (child) => {
    const t = { out: '' };
    child.stdout?.on('data', (d) => { t.out = (t.out + d).slice(-3000); });
    child.stderr?.on('data', (d) => { t.out = (t.out + d).slice(-3000); });
    return t;
  };
  const env = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('HERALD_'))), HERALD_LOG_LEVEL: 'warn', HERALD_API_KEY: BENCH_API_KEY };
  // --profile 1: every node process (workers included: node:cluster forks with the same flags)
  // and the dispatcher write a CPU profile on exit; only the storm window is summarized.
  const profDir = path.join(scratch, 'prof');
  const prof = (tag) => (opts.profile ? ['--cpu-prof', '--cpu-prof-dir', path.join(profDir, tag)] : []);
  const nodes = Array.from({ length: opts.nodes }, (_, i) => i).map((i) => {
    const port = opts.portBase + i;
    const dataDir = path.join(scratch, `node-${i}`);
    mkdirSync(dataDir, { recursive: true });
    const child = spawnAt(null, process.execPath, [...prof(`node-${i}`), HERALD_BIN, 'serve', '--dev', '--host', '127.0.0.1', '--port', String(port),
      '--redis', REDIS_URL, '--redis.prefix', prefix, '--data-dir', dataDir, '--cluster.heartbeat-ms', String(opts.heartbeatMs),
      '--cluster.drain-window-ms', '0', ...(opts.workers > 1 ? ['--workers', String(opts.workers)] : []),
      ...(opts.imUsers ? ['--database', PG_URL, '--database.schema', schema, '--database.pool-size', '4'] : [])],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
    return { i, port, url: `http://127.0.0.1:${port}`, child, log: tail(child) };
  });
  const dport = opts.portBase + opts.nodes;
  const dispatcher = spawnAt(null, process.execPath, [...prof('dispatcher'), HERALD_BIN, 'dispatch', '--host', '127.0.0.1', '--port', String(dport),
    '--redis', REDIS_URL, '--redis.prefix', prefix], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env });
  const dlog = tail(dispatcher);
  const dispatchUrl = `http://127.0.0.1:${dport}`;
  const workers = [];
  let publisher;
  let imPublisher;
  const result = { started, machine, options: opts, prefix };
  try {
    await Promise.all([...nodes.map((n) => waitPort(n.port, 90_000)), waitPort(dport, 90_000)]);
    for (let t = Date.now(); (await getJson(`${dispatchUrl}/dispatch?user=probe`)).body.nodes !== opts.nodes;) {
      if (Date.now() - t > 20_000) throw new Error(`dispatcher never saw ${opts.nodes} nodes: ${dlog.out}`);
      await sleep(100);
    }

    // Clients: u0…u(N-1), channel g<floor(i/group)>, spread over the client processes.
    const users = Array.from({ length: opts.clients }, (_, i) => `u${i}`);
    const per = Math.ceil(users.length / opts.clientProcs);
    if (per > 15_000) throw new Error(`${per} clients per client process: at most 15,000 (open files); raise --client-procs`);
    const readies = [];
    for (let p = 0; p < opts.clientProcs; p++) {
      const w = fork(SELF, ['--client-worker'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      workers.push(w);
      const q = [];
      w.on('message', (m) => { const r = q.findIndex((x) => x.ev === m.ev); if (r >= 0) q.splice(r, 1)[0].resolve(m); });
      w.waitFor = (ev, ms) => new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`client process: no ${ev} in ${ms} ms`)), ms);
        q.push({ ev, resolve: (m) => { clearTimeout(t); resolve(m); } });
      });
      await w.waitFor('up', 20_000);
      const ready = w.waitFor('ready', 420_000);
      w.send({ cmd: 'start', dispatcher: dispatchUrl, users: users.slice(p * per, (p + 1) * per), group: opts.group,
        concurrency: Math.ceil(opts.concurrency / opts.clientProcs), minReconnectDelayMs: opts.minReconnectDelayMs, wsSyncEvents: opts.wsSyncEvents, imUsers: opts.imUsers,
        localAddress: `127.0.0.${2 + p}`, openTimeoutMs: opts.openTimeoutMs });
      readies.push(ready);
    }
    const t0 = Date.now();
    const ready = await Promise.all(readies);
    const connectSecs = (Date.now() - t0) / 1000;
    const nodeOf = ready.flatMap((r) => r.nodes);
    const failed = ready.reduce((s, r) => s + r.failed, 0);
    const perNode = nodes.map((n) => nodeOf.filter((u) => u === n.url).length);
    console.error(`  ${opts.clients - failed}/${opts.clients} clients subscribed in ${connectSecs.toFixed(1)} s; per node ${perNode.join(' / ')}; load ${loadavg()}`);
    result.connect = { failed, secs: connectSecs, perNode };

    // Victim: the node holding the most clients; the publisher uses another node.
    const victim = [...nodes].sort((a, b) => perNode[b.i] - perNode[a.i])[0];
    const pubNode = nodes.find((n) => n !== victim);
    const channels = Array.from({ length: Math.ceil(opts.clients / opts.group) }, (_, g) => `g${g}`);
    publisher = startPublisher(pubNode.port, channels, opts.rate);
    if (opts.imUsers) {
      imPublisher = startPublisher(pubNode.port, users.slice(0, opts.imUsers), opts.imRate,
        (u, n) => ({ path: '/api/im/system', body: { to: u, clientId: `fo-${u}-${n}`, data: { n } } }));
    }
    // CPU-seconds per role (node processes with their workers, dispatcher, Redis, client
    // processes): before the warm-up, at the kill, and when the last client is back.
    const redisPid = Number(/process_id:(\d+)/.exec(sh('redis-cli', ['info', 'server']))?.[1] ?? 0);
    const roles = () => ({
      survivors: nodes.filter((n) => n !== victim).flatMap((n) => [n.child.pid, ...childPids(n.child.pid)]),
      dispatcher: [dispatcher.pid], redis: redisPid ? [redisPid] : [], clients: workers.map((w) => w.pid), bench: [process.pid],
    });
    const cpu = () => Object.fromEntries(Object.entries(roles()).map(([k, pids]) => [k, pids.reduce((s, pid) => s + cpuSecs(pid), 0)]));
    const warmCpu = { at: performance.now(), cpu: cpu() };
    await sleep(opts.warm * 1000);

    // A user the dispatcher sends to the victim: probed every 20 ms from the kill.
    const probeUser = users.find((u, i) => nodeOf[i] === victim.url);
    load.atKill = loadavg();
    const victimPids = [victim.child.pid, ...childPids(victim.child.pid)];
    const killCpu = { at: performance.now(), cpu: cpu() };
    const killMonoUs = Number(process.hrtime.bigint() / 1000n);
    const killAt = Date.now();
    for (const pid of victimPids.reverse()) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    for (const w of workers) w.send({ cmd: 'kill-at', at: killAt });
    console.error(`  SIGKILL node ${victim.i} (${victim.url}, ${perNode[victim.i]} clients) after ${opts.warm} s of publishing; load ${load.atKill}`);
    // The storm: poll the client processes until every client of the killed node is back
    // (resubscribed with its position) or --storm-timeout, and take the CPU at that moment.
    const storm = (async () => {
      const deadline = killAt + opts.stormTimeout * 1000;
      const timeline = [];
      for (;;) {
        await sleep(200);
        // A client process busy with its share of the storm may answer late: its event loop is
        // part of what is measured, so wait for it (bounded) rather than give up.
        const ps = await Promise.all(workers.map((w) => { const r = w.waitFor('progress', 60_000); w.send({ cmd: 'progress' }); return r; }));
        const back = ps.reduce((s, x) => s + x.back, 0);
        const down = ps.reduce((s, x) => s + x.down, 0);
        timeline.push([Date.now() - killAt, down, back, ps.reduce((s, x) => s + x.attempts, 0)]);
        if (back >= perNode[victim.i] || Date.now() > deadline) {
          return { endCpu: { at: performance.now(), cpu: cpu() }, endMonoUs: Number(process.hrtime.bigint() / 1000n), back, down, timeline };
        }
      }
    })();
    const disp = { primaryGoneMs: null, backupGoneMs: null, probes: 0, errors: 0 };
    const probeDeadline = killAt + Math.max(30_000, opts.heartbeatMs * 10);
    while (Date.now() < probeDeadline && disp.backupGoneMs === null) {
      const r = await getJson(`${dispatchUrl}/dispatch?user=${probeUser}`);
      disp.probes++;
      if (r.status !== 200) disp.errors++;
      else {
        if (disp.primaryGoneMs === null && r.body.primary !== victim.url) disp.primaryGoneMs = Date.now() - killAt;
        if (disp.primaryGoneMs !== null && !r.body.backups.includes(victim.url)) disp.backupGoneMs = Date.now() - killAt;
      }
      await sleep(20);
    }
    console.error(`  dispatcher: primary moved after ${disp.primaryGoneMs} ms, dead node out of backups after ${disp.backupGoneMs} ms`);
    const st = await storm;
    const stormSecs = (st.endCpu.at - killCpu.at) / 1000;
    const warmSecs = (killCpu.at - warmCpu.at) / 1000;
    const delta = (a, b) => Object.fromEntries(Object.keys(b.cpu).map((k) => [k, +(b.cpu[k] - a.cpu[k]).toFixed(2)]));
    const stormCpu = delta(killCpu, st.endCpu);
    const baseCpu = delta(warmCpu, killCpu);
    // Server CPU of the storm: survivors + dispatcher (Redis shown apart: it is shared with other
    // users of the host), less what the same processes spent per second before the kill.
    const serverCpu = stormCpu.survivors + stormCpu.dispatcher;
    const serverBase = ((baseCpu.survivors + baseCpu.dispatcher) / warmSecs) * stormSecs;
    result.storm = { secs: +stormSecs.toFixed(2), back: st.back, cpu: stormCpu, baselineCpuPerSec: Object.fromEntries(Object.entries(baseCpu).map(([k, v]) => [k, +(v / warmSecs).toFixed(3)])),
      resumesPerSec: Math.round(st.back / stormSecs), serverCpuSecs: +serverCpu.toFixed(2), serverCpuAboveBaseline: +(serverCpu - serverBase).toFixed(2),
      resumesPerServerCpuSec: Math.round(st.back / serverCpu), resumesPerServerCpuSecWithRedis: Math.round(st.back / (serverCpu + stormCpu.redis)),
      timeline: st.timeline, killMonoUs, endMonoUs: st.endMonoUs };
    console.error(`  storm timeline (s since kill: clients down / back / reconnect attempts): ${st.timeline.filter((_, i) => i % 5 === 4).map(([ms, d, b, a]) => `${(ms / 1000).toFixed(1)}: ${d}/${b}/${a}`).join(', ')}`);
    console.error(`  storm: ${st.back}/${perNode[victim.i]} back in ${stormSecs.toFixed(2)} s (${result.storm.resumesPerSec}/s); CPU-s ${JSON.stringify(stormCpu)}; ` +
      `${result.storm.resumesPerServerCpuSec} resumes per server CPU-s (${result.storm.resumesPerServerCpuSecWithRedis} with Redis)`);
    const rest = opts.after * 1000 - (Date.now() - killAt);
    if (rest > 0) await sleep(rest);
    await publisher.stop();
    if (imPublisher) await imPublisher.stop();
    load.end = loadavg();
    // Let the last publications drain to the clients.
    await sleep(3_000);

    const reports = await Promise.all(workers.map((w) => { const r = w.waitFor('report', 180_000); w.send({ cmd: 'report' }); return r; }));
    const all = reports.flatMap((r) => r.clients);
    const affected = all.filter((c) => c.connectedNodes[0] === victim.url);
    const others = all.filter((c) => c.connectedNodes[0] !== victim.url);
    const back = affected.filter((c) => c.resubAt).map((c) => c.resubAt - killAt);
    const detect = affected.filter((c) => c.disconnectedAt).map((c) => c.disconnectedAt - killAt);
    const missingEnd = (c) => Math.max(0, publisher.last[c.channel] - c.lastN);
    const sum = (xs, f) => xs.reduce((s, c) => s + f(c), 0);
    const integrity = (xs) => ({ clients: xs.length, received: sum(xs, (c) => c.got), expected: sum(xs, (c) => publisher.last[c.channel]),
      gaps: sum(xs, (c) => c.gaps), gapMsgs: sum(xs, (c) => c.gapMsgs), dups: sum(xs, (c) => c.dups), missingAtEnd: sum(xs, missingEnd),
      recoveredFalse: sum(xs, (c) => c.recoveredFalse), perfect: xs.filter((c) => !c.gaps && !c.dups && !missingEnd(c) && c.got === publisher.last[c.channel]).length,
      disconnected: xs.filter((c) => c.disconnects > 0).length, notConnectedAtEnd: xs.filter((c) => c.state !== 'connected').length });
    const resubNodes = {};
    for (const c of affected) resubNodes[c.resubNode || 'none'] = (resubNodes[c.resubNode || 'none'] ?? 0) + 1;
    Object.assign(result, {
      victim: { node: victim.i, url: victim.url, clients: perNode[victim.i] },
      publisher: { node: pubNode.i, sent: publisher.sent, errors: publisher.errors, skippedTicks: publisher.skipped, channels: channels.length },
      dispatcher: disp,
      recovery: {
        affected: affected.length, back: back.length, within10s: back.filter((x) => x <= TEN_S).length,
        p50Ms: pct(back, 0.5), p90Ms: pct(back, 0.9), p99Ms: pct(back, 0.99), maxMs: pct(back, 1), minMs: pct(back, 0),
        detectP50Ms: pct(detect, 0.5), detectMaxMs: pct(detect, 1),
        dispatchedP50Ms: pct(affected.filter((c) => c.dispatchedAt).map((c) => c.dispatchedAt - killAt), 0.5),
        dispatchedMaxMs: pct(affected.filter((c) => c.dispatchedAt).map((c) => c.dispatchedAt - killAt), 1),
        // Reconnect scheduled (disconnect + backoff) → connected on a node → channel resumed.
        connectedP50Ms: pct(affected.filter((c) => c.connectedAt).map((c) => c.connectedAt - killAt), 0.5),
        connectedMaxMs: pct(affected.filter((c) => c.connectedAt).map((c) => c.connectedAt - killAt), 1),
        backoffP50Ms: pct(affected.filter((c) => c.reconnectingAt).map((c) => c.reconnectingAt - killAt), 0.5),
        attemptsP50: pct(affected.map((c) => c.reconnectAttempts), 0.5), attemptsMax: pct(affected.map((c) => c.reconnectAttempts), 1),
        resubNodes,
      },
      integrity: { affected: integrity(affected), others: integrity(others) },
      im: opts.imUsers ? Object.fromEntries([['affected', affected], ['others', others]].map(([k, xs]) => {
        const ys = xs.filter((c) => c.im);
        const miss = (c) => Math.max(0, imPublisher.last[c.user] - c.im.lastN);
        return [k, { users: ys.length, received: sum(ys, (c) => c.im.got), expected: sum(ys, (c) => imPublisher.last[c.user]),
          gaps: sum(ys, (c) => c.im.gaps), dups: sum(ys, (c) => c.im.dups), missingAtEnd: sum(ys, miss) }];
      })) : undefined,
      imPublisher: imPublisher ? { sent: imPublisher.sent, errors: imPublisher.errors, skippedTicks: imPublisher.skipped, lastError: imPublisher.lastError } : undefined,
      gapSamples: all.filter((c) => c.gaps).slice(0, 20).map((c) => ({ user: c.user, channel: c.channel, resubMs: c.resubAt ? c.resubAt - killAt : null, gapLog: c.gapLog })),
      load,
    });
    const r = result.recovery;
    console.error(`  back: ${r.back}/${r.affected}, within 10 s ${r.within10s}; p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms; ` +
      `integrity affected ${JSON.stringify(result.integrity.affected)}, others ${JSON.stringify(result.integrity.others)}; ` +
      `${result.im ? `IM ${JSON.stringify(result.im)} ${JSON.stringify(result.imPublisher)}; ` : ''}load ${load.end}`);
  } finally {
    if (publisher) await publisher.stop().catch(() => {});
    if (imPublisher) await imPublisher.stop().catch(() => {});
    for (const w of workers) w.send?.({ cmd: 'quit' });
    await sleep(500);
    for (const w of workers) if (w.exitCode === null) w.kill('SIGKILL');
    const grace = opts.profile ? 30_000 : 5_000;
    await Promise.all([...nodes.map((n) => stopChild(n.child, 'SIGTERM', grace)), stopChild(dispatcher, 'SIGTERM', grace)]);
    if (opts.profile && result.storm) {
      const { summarizeProfile } = await import('./cpuprofile.js');
      result.profiles = {};
      for (const tag of readdirSync(profDir)) {
        for (const f of readdirSync(path.join(profDir, tag))) {
          const sum = summarizeProfile(path.join(profDir, tag, f), result.storm.killMonoUs, result.storm.endMonoUs, PROFILE_MARKS);
          if (sum.busyMs > 0) result.profiles[`${tag}/${f}`] = sum;
        }
      }
      const keep = path.join(RESULTS_DIR, `failover-prof-${started.replace(/[:.]/g, '-')}`);
      mkdirSync(keep, { recursive: true });
      for (const tag of readdirSync(profDir)) for (const f of readdirSync(path.join(profDir, tag))) renameSync(path.join(profDir, tag, f), path.join(keep, `${tag}-${f}`));
      console.error(`  profiles of the storm window: ${JSON.stringify(Object.fromEntries(Object.entries(result.profiles).map(([k, v]) => [k, { busyMs: v.busyMs, top: v.byArea.slice(0, 6) }])))}`);
    }
    result.nodeLogs = Object.fromEntries([...nodes.map((n) => [n.i, n.log.out.slice(-800)]), ['dispatcher', dlog.out.slice(-800)]]);
    result.redisKeysRemoved = redisCleanup(prefix);
    if (opts.imUsers) result.schemaDropped = sh('psql', [PG_URL, '-tAc', `DROP SCHEMA IF EXISTS ${schema} CASCADE`]);
    rmSync(scratch, { recursive: true, force: true });
    console.error(`  redis keys removed: ${result.redisKeysRemoved}`);
  }
  result.finished = new Date().toISOString();
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `failover-${opts.clients}-${started.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  const r = result.recovery;
  const ia = result.integrity.affected;
  const io = result.integrity.others;
  console.log(`| ${opts.clients} | ${result.victim.clients} | ${r.back}/${r.affected} (${r.within10s} ≤ 10 s) | ${r.p50Ms} / ${r.p99Ms} / ${r.maxMs} | ` +
    `${result.dispatcher.primaryGoneMs} / ${result.dispatcher.backupGoneMs} | ${ia.gaps} / ${ia.dups} / ${ia.missingAtEnd} | ${io.gaps} / ${io.dups} / ${io.missingAtEnd} | ` +
    `${ia.recoveredFalse} | ${result.publisher.sent} (${result.publisher.errors} errors) | ${load.before} → ${load.atKill} → ${load.end} |`);
  console.error(`results: ${path.relative(ROOT, file)}`);
}

if (process.argv.includes('--client-worker')) {
  await clientWorker();
} else {
  await main().catch((e) => {
    console.error(e?.stack ?? e);
    process.exitCode = 1;
  });
}
