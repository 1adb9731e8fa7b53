#!/usr/bin/env node
// Connection scale on one host: `herald serve --workers N --redis …` ramped to hundreds of
// thousands of idle WebSocket connections by several loadgen processes.
//
//   node bench/scale.js [--workers 20] [--steps 50000,100000,200000,300000] [--subs 2]
//                       [--concurrency 1024] [--min-free-gb 3] [--ramp-timeout 600] [--peers 15000]
//
// Every connection does what the goal's setting says: connect, then subscribe to the shared
// channel "bench" and to its own "u<i>" (--subs 1: "bench" only). A process may hold at most
// 20,000 open files here, so the server runs N workers (node:cluster, one port; the primary
// hands accepted connections to the workers in turn) and the clients run as loadgen
// processes of at most 15,000 connections each, spread over loopback source addresses
// 127.0.0.2… (15,000 per address) to stay clear of the ephemeral port range.
//
// At each step: connections held, time to open the step's new connections, server RSS
// (primary + workers) total and per connection above the idle baseline (taken after a warm-up
// that opens and closes 100 connections per worker), kernel socket memory (/proc/net/sockstat,
// Slab from /proc/meminfo), and one broadcast to "bench" through the HTTP API: how many of
// the held connections got it and when the last one did. Before the broadcast, the server's
// CPU over 10 s of only holding the connections (WebSocket pings every 25 s) is read too.
// The ramp stops by itself when a step does not complete (connections refused or dropped, or the broadcast not delivered to all),
// when MemAvailable falls under --min-free-gb, or when a step takes longer than --ramp-timeout.
// --peers N (0 = skip): after the ramp, in the same run, memory per idle connection of one
// process each of Herald (1 process, Redis broker), Nchan (1 worker) and Socket.IO at N
// connections with the same connection script, measured as in bench/run.js (warm-up of 500,
// RSS after − before), plus the kernel's share (Slab) per connection.
// Results: JSON in bench/results/, markdown on stdout. Never part of `npm test`.
import { mkdirSync, readFileSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ROOT, RESULTS_DIR, MAX_CONNS_PER_LOADGEN, benchProcessSetup, heraldEnv, buildLoadgen, childPids, cpuSecs, drain, loadavg,
  machineInfo, makePublisher, mergeLatency, nowUs, openConnections, redisCleanup, rssKb, statsAll, stopChild, spawnAt, waitPort,
} from './common.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const HERALD_BIN = path.join(ROOT, 'bin/herald.js');

function parseArgs(argv) {
  const opts = {
    workers: 20,
    steps: [50_000, 100_000, 200_000, 300_000],
    subs: 2,
    concurrency: 1024,
    minFreeGb: 3,
    rampTimeout: 600,
    port: 19_000 + Math.floor(Math.random() * 900),
    peers: 15_000,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    i++;
    switch (a) {
      case '--workers': opts.workers = Number(v); break;
      case '--steps': opts.steps = v.split(',').map(Number); break;
      case '--subs': opts.subs = Number(v); break;
      case '--concurrency': opts.concurrency = Number(v); break;
      case '--min-free-gb': opts.minFreeGb = Number(v); break;
      case '--ramp-timeout': opts.rampTimeout = Number(v); break;
      case '--port': opts.port = Number(v); break;
      case '--peers': opts.peers = Number(v); break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  return opts;
}

function meminfo() {
  const m = {};
  for (const line of readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const x = /^(\w+):\s+(\d+)/.exec(line);
    if (x) m[x[1]] = Number(x[2]);
  }
  return { memAvailableMb: Math.round(m.MemAvailable / 1024), slabMb: Math.round(m.Slab / 1024), sunreclaimMb: Math.round(m.SUnreclaim / 1024) };
}

function sockstat() {
  const s = readFileSync('/proc/net/sockstat', 'utf8');
  const tcp = /TCP: inuse (\d+) orphan (\d+) tw (\d+) alloc (\d+) mem (\d+)/.exec(s);
  return tcp ? { tcpInuse: +tcp[1], tcpOrphan: +tcp[2], tcpTw: +tcp[3], tcpAlloc: +tcp[4], tcpMemPages: +tcp[5], tcpMemMb: +(tcp[5] * 4 / 1024).toFixed(1) } : null;
}

function conntrack() {
  const f = '/proc/sys/net/netfilter/nf_conntrack_count';
  return existsSync(f) ? Number(readFileSync(f, 'utf8')) : null;
}

function serverRss(primaryPid) {
  const workers = childPids(primaryPid);
  const per = workers.map((p) => rssKb(p));
  return { primaryKb: rssKb(primaryPid), workersKb: per.reduce((s, x) => s + x, 0), perWorkerMb: per.map((x) => +(x / 1024).toFixed(1)), workers: workers.length };
}

/** One-process servers for the per-connection memory comparison (--peers). */
function peerServers(prefix, scratch) {
  return {
    herald: {
      label: 'Herald, 1 process (Redis broker)',
      start: (port) => spawnAt(null, process.execPath, [HERALD_BIN, 'serve', '--port', String(port), '--host', '127.0.0.1', '--redis', REDIS_URL,
        '--redis.prefix', prefix, '--data-dir', scratch], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: heraldEnv() }),
      spec: (subs) => ({ path: '/connection/websocket', send: ['{"id":1,"cmd":"connect"}', '{"id":2,"cmd":"subscribe","channel":"bench"}', '{"id":3,"cmd":"subscribe","channel":"u%d"}'].slice(0, 1 + subs) }),
    },
    nchan: {
      label: 'Nchan, 1 worker',
      start: (port) => {
        const dir = path.join(scratch, `nchan-${port}`);
        mkdirSync(path.join(dir, 'logs'), { recursive: true });
        mkdirSync(path.join(dir, 'tmp'), { recursive: true });
        writeFileSync(path.join(dir, 'nginx.conf'), readFileSync(path.join(ROOT, 'bench/peers/nchan.conf'), 'utf8').replaceAll('PREFIX', dir).replaceAll('PORT', String(port)));
        return spawnAt(null, 'nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      },
      spec: (subs) => ({ path: subs === 2 ? '/sub/bench,u%d' : '/sub/bench' }),
    },
    socketio: {
      label: 'Socket.IO 4.8, 1 process',
      start: (port) => spawnAt(null, process.execPath, [path.join(ROOT, 'bench/peers/socketio-server.js'), String(port)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }),
      spec: (subs) => ({ path: '/socket.io/?EIO=4&transport=websocket', pre: 1, send: ['40', '421["subscribe","bench"]', '422["subscribe","u%d"]'].slice(0, 1 + subs), ping: '2', pong: '3' }),
    },
  };
}

async function peerMemory(opts, prefix, scratch) {
  const out = [];
  let port = opts.port + 1;
  for (const [name, def] of Object.entries(peerServers(prefix, scratch))) {
    const child = def.start(++port);
    const pids = () => [child.pid, ...childPids(child.pid)];
    const r = { server: name, label: def.label, conns: opts.peers };
    let gens = [];
    try {
      await waitPort(port);
      await sleep(500);
      const warm = await openConnections({ port, spec: def.spec(opts.subs), conns: 500, idBase: 0, concurrency: 256, tag: `${name}-warm` });
      await Promise.all(warm.gens.map((g) => g.quit()));
      await sleep(2_000);
      const rss0 = pids().reduce((s, p) => s + rssKb(p), 0);
      const m0 = meminfo();
      const o = await openConnections({ port, spec: def.spec(opts.subs), conns: opts.peers, idBase: 0, concurrency: 256, tag: `${name}-mem` });
      gens = o.gens;
      await sleep(3_000);
      const rss1 = pids().reduce((s, p) => s + rssKb(p), 0);
      const m1 = meminfo();
      Object.assign(r, { ready: o.ready, acceptPerSec: o.acceptPerSec, rssBeforeMb: +(rss0 / 1024).toFixed(1), rssAfterMb: +(rss1 / 1024).toFixed(1),
        kbPerConn: +((rss1 - rss0) / o.ready).toFixed(2), slabKbPerConn: +(((m1.slabMb - m0.slabMb) * 1024) / o.ready).toFixed(2), load: loadavg() });
      console.error(`  peer ${def.label}: ${o.ready}/${opts.peers} ready (${o.acceptPerSec}/s), RSS ${r.rssBeforeMb} → ${r.rssAfterMb} MB = ${r.kbPerConn} KB/conn; slab ${r.slabKbPerConn} KB/conn; load ${r.load}`);
    } catch (e) {
      r.error = String(e?.message ?? e);
      console.error(`  peer ${def.label}: ${r.error}`);
    }
    await Promise.all(gens.map((g) => g.quit()));
    await stopChild(child);
    await sleep(1_000);
    out.push(r);
  }
  return out;
}

const fmt = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v) ? '—' : Number(v).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  benchProcessSetup();
  buildLoadgen();
  const scratch = path.join(os.tmpdir(), `herald-scale-bench-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  const prefix = `herald-bench-${process.pid}:`;
  const started = new Date().toISOString();
  const machine = { ...machineInfo(), portRange: readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim(), somaxconn: readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim(), tcpMem: readFileSync('/proc/sys/net/ipv4/tcp_mem', 'utf8').trim() };
  console.error(`scale bench: ${opts.workers} workers, steps ${opts.steps.join(', ')}, ${opts.subs} subscriptions per connection; load ${loadavg()}`);
  const spec = {
    path: '/connection/websocket',
    send: ['{"id":1,"cmd":"connect"}', '{"id":2,"cmd":"subscribe","channel":"bench"}', '{"id":3,"cmd":"subscribe","channel":"u%d"}'].slice(0, 1 + opts.subs),
  };
  const server = spawnAt(null, process.execPath, [HERALD_BIN, 'serve', '--workers', String(opts.workers), '--port', String(opts.port),
    '--host', '127.0.0.1', '--redis', REDIS_URL, '--redis.prefix', prefix, '--data-dir', scratch, '--limits.max-connections', '20000'],
  { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: heraldEnv('info') });
  let out = '';
  let allListening = false;
  const onOut = (d) => {
    out = (out + d).slice(-20_000);
    if (out.includes(`with ${opts.workers} workers`)) allListening = true;
  };
  server.stdout.on('data', onOut);
  server.stderr.on('data', onOut);
  const gens = [];
  const steps = [];
  let stopReason = null;
  let held = 0;
  try {
    await waitPort(opts.port, 60_000);
    for (let t = 0; !allListening && t < 600; t++) await sleep(100);
    if (!allListening) throw new Error('not every worker reported listening');
    // Warm-up: about 100 connections per worker, opened and closed, so that lazily loaded code
    // and JIT state are not charged to the connections measured.
    const warm = await openConnections({ port: opts.port, spec, conns: opts.workers * 100, idBase: 0, concurrency: 256, tag: 'warm' });
    await Promise.all(warm.gens.map((g) => g.quit()));
    await sleep(5_000);
    const base = { rss: serverRss(server.pid), sock: sockstat(), mem: meminfo(), load: loadavg() };
    console.error(`  baseline: primary ${fmt(base.rss.primaryKb / 1024, 1)} MB + ${base.rss.workers} workers ${fmt(base.rss.workersKb / 1024, 1)} MB; ` +
      `TCP mem ${base.sock.tcpMemMb} MB, slab ${base.mem.slabMb} MB, available ${base.mem.memAvailableMb} MB`);
    const publisher = makePublisher(opts.port, { path: () => '/api/publish', body: (channel, data) => JSON.stringify({ channel, data }) }, 64, 1);
    for (const target of opts.steps) {
      const add = target - held;
      if (add <= 0) continue;
      const cpu0 = [server.pid, ...childPids(server.pid)].reduce((s, p) => s + cpuSecs(p), 0);
      const prim0 = cpuSecs(server.pid);
      const t0 = Date.now();
      const o = await openConnections({ port: opts.port, spec, conns: add, idBase: held, concurrency: opts.concurrency, tag: `s${target}`,
        timeoutMs: opts.rampTimeout * 1000, maxSecs: 3_600 });
      const rampSecs = (Date.now() - t0) / 1000;
      const cpu1 = [server.pid, ...childPids(server.pid)].reduce((s, p) => s + cpuSecs(p), 0);
      const prim1 = cpuSecs(server.pid);
      gens.push(...o.gens);
      await sleep(5_000);
      const st0 = await statsAll(gens);
      const holding = st0.reduce((s, x) => s + x.ready - x.dropped, 0);
      const dropped = st0.reduce((s, x) => s + x.dropped, 0);
      const rss = serverRss(server.pid);
      const sock = sockstat();
      const mem = meminfo();
      const step = {
        target, added: add, ready: o.ready, failed: o.failed, errors: o.errors, holding, dropped,
        openSecs: o.secs, openPerSec: o.acceptPerSec, rampWallSecs: +rampSecs.toFixed(1), serverCpuSecsDuringOpen: +(cpu1 - cpu0).toFixed(1), primaryCpuSecsDuringOpen: +(prim1 - prim0).toFixed(1),
        rss, rssTotalMb: +((rss.primaryKb + rss.workersKb) / 1024).toFixed(1),
        kbPerConn: holding ? +((rss.primaryKb + rss.workersKb - base.rss.primaryKb - base.rss.workersKb) / holding).toFixed(2) : null,
        sock, mem, conntrack: conntrack(), load: loadavg(),
        kernelTcpKbPerConn: holding ? +(((sock.tcpMemPages - base.sock.tcpMemPages) * 4) / holding).toFixed(3) : null,
        slabKbPerConn: holding ? +(((mem.slabMb - base.mem.slabMb) * 1024) / holding).toFixed(2) : null,
      };
      // CPU of the server while it only holds the connections (heartbeats): 10 s of nothing.
      const idle0 = [server.pid, ...childPids(server.pid)].reduce((s, p) => s + cpuSecs(p), 0);
      await sleep(10_000);
      step.idleServerCpuPct = Math.round((([server.pid, ...childPids(server.pid)].reduce((s, p) => s + cpuSecs(p), 0) - idle0) / 10) * 100);
      // One broadcast to every held connection, published through the HTTP API (one worker
      // takes it; Redis carries it to all the others).
      await statsAll(gens, 'reset');
      const tp = nowUs();
      await publisher.one('bench');
      const got = await drain(gens, holding, 15_000, 300_000);
      const sb = await statsAll(gens, 'hist');
      const last = Math.max(...sb.map((x) => x.last_delivery_us));
      step.broadcast = { expected: holding, delivered: got, secsToLast: last ? +((last - tp) / 1e6).toFixed(2) : null, latency: mergeLatency(sb), publishErrors: publisher.errors };
      steps.push(step);
      console.error(`  step ${fmt(target)}: ${fmt(o.ready)}/${fmt(add)} new ready in ${o.secs} s (${fmt(o.acceptPerSec)}/s), holding ${fmt(holding)} (dropped ${dropped}); ` +
        `RSS ${fmt(step.rssTotalMb, 0)} MB = ${step.kbPerConn} KB/conn; TCP mem ${sock.tcpMemMb} MB, slab ${mem.slabMb} MB, available ${mem.memAvailableMb} MB; ` +
        `idle server CPU ${step.idleServerCpuPct}%; broadcast ${fmt(got)}/${fmt(holding)} in ${step.broadcast.secsToLast} s (p50 ${step.broadcast.latency.p50Ms} ms); load ${step.load}` +
        (o.errors.length ? `; errors: ${o.errors.join('; ')}` : ''));
      held += o.ready;
      if (o.ready < add || dropped > 0) { stopReason = `step ${target}: ${add - o.ready} connections not ready, ${dropped} dropped (${o.errors.join('; ') || 'no client error'})`; break; }
      if (got < holding) { stopReason = `step ${target}: broadcast reached ${got} of ${holding}`; break; }
      if (mem.memAvailableMb < opts.minFreeGb * 1024) { stopReason = `MemAvailable ${mem.memAvailableMb} MB < ${opts.minFreeGb} GB`; break; }
    }
    publisher.close();
    // Stop the cluster before the one-process comparison so that it has the machine to itself.
    await Promise.all(gens.splice(0).map((g) => g.quit()));
    await stopChild(server, 'SIGTERM', 60_000);
    const peers = opts.peers ? await peerMemory(opts, prefix, scratch) : [];
    const result = { started, finished: new Date().toISOString(), machine, options: opts, baseline: base, steps, stopReason, peers,
      loadgenProcesses: gens.length, maxConnsPerLoadgen: MAX_CONNS_PER_LOADGEN, serverLogTail: out.slice(-3000) };
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `scale-${started.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    const L = [];
    L.push(`| Step | Held | Time to open the step (s), conn/s | Server RSS total (MB) | RSS per conn above baseline (KB) | TCP buffer mem (MB) | Slab (MB), per conn (KB) | Broadcast delivered, last after (s) | Load avg |`);
    L.push('|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const s of steps) {
      L.push(`| ${fmt(s.target)} | ${fmt(s.holding)} | ${s.openSecs}, ${fmt(s.openPerSec)} | ${fmt(s.rssTotalMb)} | ${fmt(s.kbPerConn, 2)} | ${s.sock.tcpMemMb} | ${fmt(s.mem.slabMb)}, ${fmt(s.slabKbPerConn, 2)} | ` +
        `${fmt(s.broadcast.delivered)} / ${fmt(s.broadcast.expected)}, ${s.broadcast.secsToLast} | ${s.load} |`);
    }
    console.log(L.join('\n'));
    console.log(`\nbaseline: ${fmt((base.rss.primaryKb + base.rss.workersKb) / 1024, 1)} MB (${opts.workers} workers + primary); stop: ${stopReason ?? 'all steps completed'}`);
    if (peers.length) {
      console.log('\n| Server (same run) | Connections | Ready | Accept rate (conn/s) | RSS before → after (MB) | RSS per idle conn (KB) | Kernel slab per conn (KB) |');
      console.log('|---|---:|---:|---:|---:|---:|---:|');
      for (const r of peers) console.log(`| ${r.label} | ${fmt(r.conns)} | ${fmt(r.ready)} | ${fmt(r.acceptPerSec)} | ${r.rssBeforeMb} → ${r.rssAfterMb} | ${fmt(r.kbPerConn, 2)} | ${fmt(r.slabKbPerConn, 2)} |`);
    }
    console.error(`results: ${path.relative(ROOT, file)}`);
  } finally {
    await Promise.all(gens.map((g) => g.quit()));
    await stopChild(server, 'SIGTERM', 60_000);
    rmSync(scratch, { recursive: true, force: true });
    console.error(`redis keys removed: ${redisCleanup(prefix)}`);
  }
}

main().catch((e) => {
  console.error(e?.stack ?? e);
  process.exitCode = 1;
});
