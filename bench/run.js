#!/usr/bin/env node
// Macro benchmark: Herald beside real Nchan and Socket.IO 4.8, same C load client, same run.
//
//   npm run bench -- [--servers herald,nchan,socketio] [--conns 10000,19000] [--fanout-conns 10000 (0 = none)]
//                    [--burst 100] [--repeat 3] [--rate 2] [--duration 10] [--payload 64] [--concurrency 256] [--subs 2] [--second personal|shared]
//                    [--herald-bin path/to/bin/herald.js] [--herald-b path/to/another/bin/herald.js]
//                    [--sub-type websocket|longpoll]  (subscribers on the Nchan routes: nchan, herald-nchan)
//                    [--pipeline]  (Herald's native clients send connect + subscribes at once: one round trip)
//                    [--node-args "--cpu-prof --cpu-prof-dir=/tmp/prof"]  (extra Node options for every Herald server)
//
// For each server and each connection count the server is started fresh (pinned to core 0),
// warmed up with a few hundred connections, and then N WebSocket connections are opened by
// loadgen processes (pinned to core 1), each connection making 2 subscriptions: "bench" and
// its own "u<i>". Measured: accept rate, server RSS per idle connection (VmRSS after − before,
// over connections), and, at --fanout-conns, broadcast fan-out deliveries/s for a burst of
// publications (clock stopped when the last delivery arrived) and publish→deliver latency at
// a paced publication rate. Results: JSON in bench/results/, a markdown table on stdout.
// Never part of `npm test`. Linux only (epoll, /proc, taskset).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, rmSync, existsSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  RESULTS_DIR, ROOT, benchProcessSetup, buildLoadgen, childPids, cpuSecs, drain as drainUntil, heraldEnv, machineInfo as commonMachineInfo,
  makePublisher, median, mergeLatency, nowUs, openConnections as openOn, rssKb, sh, spawnAt, statsAll, stopChild, waitPort,
} from './common.js';

const SERVER_CPU = '0';
const CLIENT_CPU = '1';
const WARMUP_CONNS = 500;
const READY_TIMEOUT_MS = 180_000;
const DRAIN_IDLE_MS = 5_000;
const DRAIN_TIMEOUT_MS = 120_000;
const SETTLE_MS = 3_000;
const LOADGEN_MAX_SECS = 900;
// ---------------------------------------------------------------- options

function parseArgs(argv) {
  const opts = {
    servers: ['herald', 'nchan', 'socketio'],
    conns: [10_000, 19_000],
    fanoutConns: 10_000,
    burst: 100,
    repeat: 3,
    rate: 2,
    duration: 10,
    payload: 64,
    concurrency: 256,
    portBase: 18_100 + Math.floor(Math.random() * 500) * 4,
    publishConcurrency: 8,
    subs: 2,
    second: 'personal',
    subType: 'websocket',
    pipeline: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    const num = () => {
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${a} needs a positive number`);
      i++;
      return n;
    };
    switch (a) {
      case '--servers': opts.servers = v.split(',').filter(Boolean); i++; break;
      case '--conns': opts.conns = v.split(',').map(Number); i++; break;
      case '--fanout-conns': opts.fanoutConns = v === '0' ? (i++, 0) : num(); break;
      case '--burst': opts.burst = num(); break;
      case '--rate': opts.rate = num(); break;
      case '--repeat': opts.repeat = num(); break;
      case '--duration': opts.duration = num(); break;
      case '--payload': opts.payload = num(); break;
      case '--concurrency': opts.concurrency = num(); break;
      case '--port-base': opts.portBase = num(); break;
      case '--second':
        // The second subscription: each connection's own channel u<i> (default) or one shared "bench2".
        if (v !== 'personal' && v !== 'shared') throw new Error('--second is personal or shared');
        opts.second = v;
        i++;
        break;
      case '--herald-bin': HERALD_BIN = path.resolve(v); i++; break;
      case '--herald-b':
        // A/B: a second Herald build (path to its bin/herald.js) measured in the same run, on
        // each Herald entry of --servers (herald → herald-b, herald-nchan → herald-nchan-b).
        HERALD_B_BIN = path.resolve(v);
        i++;
        break;
      case '--sub-type':
        // Subscriber transport on the Nchan routes (nchan, herald-nchan): websocket (default) or longpoll.
        if (v !== 'websocket' && v !== 'longpoll') throw new Error('--sub-type is websocket or longpoll');
        opts.subType = v;
        i++;
        break;
      case '--pipeline':
        // Herald's native clients send connect and their subscribes at once (one round trip), not in lock step.
        opts.pipeline = true;
        break;
      case '--node-args': NODE_ARGS = v.split(' ').filter(Boolean); i++; break;
      case '--subs': opts.subs = num(); if (opts.subs !== 1 && opts.subs !== 2) throw new Error('--subs is 1 or 2'); break;
      case '--help': case '-h':
        console.log(readFileSync(fileURLToPath(import.meta.url), 'utf8').split("\n").slice(1, 18).join('\n'));
        process.exit(0);
        break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  if (HERALD_B_BIN) {
    for (const base of ['herald', 'herald-nchan']) {
      if (!opts.servers.includes(base)) continue;
      SERVERS[`${base}-b`] = {
        ...SERVERS[base],
        label: `${SERVERS[base].label} (B)`,
        start(port) {
          const child = spawnAt(SERVER_CPU, process.execPath, [...NODE_ARGS, HERALD_B_BIN, 'serve', '--port', String(port), '--host', '127.0.0.1'],
            { cwd: path.dirname(path.dirname(HERALD_B_BIN)), stdio: ['ignore', 'pipe', 'pipe'], env: heraldEnv() });
          return { child, pids: () => [child.pid] };
        },
      };
      if (!opts.servers.includes(`${base}-b`)) opts.servers.push(`${base}-b`);
    }
  }
  for (const s of opts.servers) if (!SERVERS[s]) throw new Error(`unknown server ${s}`);
  for (const c of opts.conns) if (!Number.isInteger(c) || c <= 0) throw new Error('--conns takes positive integers');
  return opts;
}

// ---------------------------------------------------------------- helpers

/** Per-core jiffies from /proc/stat: { busy, total } for the server and the client core. */
function coreTimes() {
  const out = {};
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (!m || (m[1] !== SERVER_CPU && m[1] !== CLIENT_CPU)) continue;
    const f = m[2].trim().split(/\s+/).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    out[m[1]] = { busy: total - f[3] - f[4], softirq: f[6], total };
  }
  return out;
}

function coreBusyPct(a, b, core) {
  const dt = b[core].total - a[core].total;
  return dt > 0 ? { busy: Math.round(((b[core].busy - a[core].busy) / dt) * 100), softirq: Math.round(((b[core].softirq - a[core].softirq) / dt) * 100) } : null;
}

/** Which Herald was measured: the build's location and age, and the repository state. */
function heraldBuild(bin) {
  const dir = path.dirname(path.dirname(bin));
  const distIndex = path.join(dir, 'dist', 'index.js');
  const built = existsSync(distIndex) ? statSync(distIndex).mtime.toISOString() : null;
  // A snapshot made with `git archive` has no .git; it records its commit in COMMIT.
  if (existsSync(path.join(dir, 'COMMIT'))) {
    return { bin, distBuilt: built, commit: readFileSync(path.join(dir, 'COMMIT'), 'utf8').trim(), dirtySrcFiles: 0 };
  }
  return {
    bin,
    distBuilt: built,
    commit: sh('git', ['-C', dir, 'rev-parse', '--short', 'HEAD']),
    dirtySrcFiles: sh('git', ['-C', dir, 'status', '--porcelain', '--', 'src']).split('\n').filter(Boolean).length,
  };
}

function machineInfo() {
  const { commit: _commit, dirtySrcFiles: _dirty, ...machine } = commonMachineInfo();
  return {
    ...machine,
    socketio: JSON.parse(readFileSync(path.join(ROOT, 'node_modules/socket.io/package.json'), 'utf8')).version,
    ws: JSON.parse(readFileSync(path.join(ROOT, 'node_modules/ws/package.json'), 'utf8')).version,
    openFilesLimit: Number(sh('sh', ['-c', 'ulimit -n'])),
    herald: heraldBuild(HERALD_BIN),
    ...(HERALD_B_BIN ? { heraldB: heraldBuild(HERALD_B_BIN) } : {}),
  };
}

// ---------------------------------------------------------------- servers

/**
 * Each server: how to start it (pinned to the server core), which pids make up its RSS,
 * how a loadgen connection subscribes, and how the publisher publishes to "bench".
 */
/** The Herald under test (`--herald-bin` to measure another build, e.g. a snapshot of a commit). */
let HERALD_BIN = path.join(ROOT, 'bin/herald.js');
/** The B build of an A/B run (`--herald-b`), or null. */
let HERALD_B_BIN = null;
/** Extra Node options for every Herald server process (`--node-args`), e.g. a CPU profile. */
let NODE_ARGS = [];

const SERVERS = {
  herald: {
    label: 'Herald',
    start(port) {
      const child = spawnAt(SERVER_CPU, process.execPath, [...NODE_ARGS, HERALD_BIN, 'serve',
        '--port', String(port), '--host', '127.0.0.1'], { cwd: path.dirname(path.dirname(HERALD_BIN)), stdio: ['ignore', 'pipe', 'pipe'], env: heraldEnv() });
      return { child, pids: () => [child.pid] };
    },
    loadgen: (subs, pipeline) => ({
      path: '/connection/websocket',
      pre: 0,
      send: ['{"id":1,"cmd":"connect"}', '{"id":2,"cmd":"subscribe","channel":"bench"}', '{"id":3,"cmd":"subscribe","channel":"u%d"}'].slice(0, 1 + subs),
      pipeline,
    }),
    publish: { path: () => '/api/publish', body: (channel, data) => JSON.stringify({ channel, data }) },
  },
  nchan: {
    label: 'Nchan',
    start(port, scratch) {
      const prefix = path.join(scratch, `nchan-${port}`);
      rmSync(prefix, { recursive: true, force: true });
      mkdirSync(path.join(prefix, 'logs'), { recursive: true });
      mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
      const conf = readFileSync(path.join(ROOT, 'bench/peers/nchan.conf'), 'utf8')
        .replaceAll('PREFIX', prefix).replaceAll('PORT', String(port))
        .replace('nchan_subscriber websocket;', 'nchan_subscriber websocket longpoll;');
      writeFileSync(path.join(prefix, 'nginx.conf'), conf);
      const child = spawnAt(SERVER_CPU, 'nginx', ['-c', path.join(prefix, 'nginx.conf'), '-p', prefix],
        { stdio: ['ignore', 'pipe', 'pipe'] });
      return { child, pids: () => [child.pid, ...childPids(child.pid)], cleanup: () => rmSync(prefix, { recursive: true, force: true }) };
    },
    loadgen: (subs) => ({ path: subs === 2 ? '/sub/bench,u%d' : '/sub/bench', pre: 0, send: [], nchanRoute: true }),
    publish: { path: (channel) => `/pub/${channel}`, body: (_channel, data) => JSON.stringify(data) },
  },
  // Herald's Nchan front (src/fronts/nchan, default routes): the same client script and publisher as Nchan.
  'herald-nchan': {
    label: 'Herald (Nchan routes)',
    start(port) {
      const child = spawnAt(SERVER_CPU, process.execPath, [...NODE_ARGS, HERALD_BIN, 'serve',
        '--port', String(port), '--host', '127.0.0.1'], { cwd: path.dirname(path.dirname(HERALD_BIN)), stdio: ['ignore', 'pipe', 'pipe'], env: heraldEnv() });
      return { child, pids: () => [child.pid] };
    },
    loadgen: (subs) => ({ path: subs === 2 ? '/sub/bench,u%d' : '/sub/bench', pre: 0, send: [], nchanRoute: true }),
    publish: { path: (channel) => `/pub/${channel}`, body: (_channel, data) => JSON.stringify(data) },
  },
  socketio: {
    label: 'Socket.IO',
    start(port) {
      const child = spawnAt(SERVER_CPU, process.execPath, [path.join(ROOT, 'bench/peers/socketio-server.js'), String(port)],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      return { child, pids: () => [child.pid] };
    },
    loadgen: (subs) => ({
      path: '/socket.io/?EIO=4&transport=websocket',
      pre: 1, // the Engine.IO open packet 0{...}
      send: ['40', '421["subscribe","bench"]', '422["subscribe","u%d"]'].slice(0, 1 + subs),
      ping: '2',
      pong: '3',
    }),
    publish: { path: (channel) => `/publish/${channel}`, body: (_channel, data) => JSON.stringify(data) },
  },
};

// ---------------------------------------------------------------- load client

/** Open `conns` connections from loadgen processes pinned to the client core. */
const openConnections = (port, spec, conns, concurrency, tag) =>
  openOn({ port, spec, conns, concurrency, tag, cpu: CLIENT_CPU, timeoutMs: READY_TIMEOUT_MS, maxSecs: LOADGEN_MAX_SECS });

/** Poll loadgens until `expected` deliveries arrived, or nothing moved for DRAIN_IDLE_MS. */
const drain = (gens, expected) => drainUntil(gens, expected, DRAIN_IDLE_MS, DRAIN_TIMEOUT_MS);

// ---------------------------------------------------------------- measurements

/** The connection script with the second channel made shared ("bench2") instead of personal ("u<i>"). */
function withSecond(spec, second, subType = 'websocket') {
  if (spec.nchanRoute && subType === 'longpoll') spec = { ...spec, mode: 'longpoll' };
  if (second === 'personal') return spec;
  const fix = (x) => x.replaceAll('u%d', 'bench2');
  return { ...spec, path: fix(spec.path), send: spec.send.map(fix) };
}

/** Start a fresh server, warm it up, open `conns` connections, measure accept rate and RSS. */
async function setup(name, conns, opts, scratch, portRef) {
  const def = SERVERS[name];
  const port = portRef.next++;
  const result = { server: name, conns };
  const srv = def.start(port, scratch);
  const h = { name, def, port, srv, gens: [], result, out: '' };
  srv.child.stdout.on('data', (d) => { h.out = (h.out + d).slice(-4000); });
  srv.child.stderr.on('data', (d) => { h.out = (h.out + d).slice(-4000); });
  try {
    await waitPort(port);
    await sleep(500);
    // Warm-up: load lazily required code and JIT the accept path, then measure from there.
    const warm = await openConnections(port, withSecond(def.loadgen(opts.subs, opts.pipeline), opts.second, opts.subType), WARMUP_CONNS, opts.concurrency, `${name}-warm`);
    await Promise.all(warm.gens.map((g) => g.quit()));
    await sleep(2_000);
    const rssBefore = srv.pids().reduce((s, p) => s + rssKb(p), 0);
    const k0 = coreTimes();
    const open = await openConnections(port, withSecond(def.loadgen(opts.subs, opts.pipeline), opts.second, opts.subType), conns, opts.concurrency, `${name}-${conns}`);
    const k1 = coreTimes();
    h.gens.push(...open.gens);
    const { gens: _gens, readies: _readies, ...summary } = open;
    Object.assign(result, summary, { acceptServerCore: coreBusyPct(k0, k1, SERVER_CPU) });
    await sleep(SETTLE_MS);
    const rssAfter = srv.pids().reduce((s, p) => s + rssKb(p), 0);
    Object.assign(result, {
      rssBeforeMb: +(rssBefore / 1024).toFixed(1),
      rssAfterMb: +(rssAfter / 1024).toFixed(1),
      kbPerConn: result.ready ? +((rssAfter - rssBefore) / result.ready).toFixed(2) : null,
    });
    console.error(`  ${def.label} ${conns}: ready ${result.ready}/${conns} in ${result.secs.toFixed(2)} s (${result.acceptPerSec}/s, ` +
      `core ${SERVER_CPU} busy ${result.acceptServerCore?.busy}%), RSS ${result.rssBeforeMb} → ${result.rssAfterMb} MB = ${result.kbPerConn} KB/conn` +
      (result.errors.length ? `; errors: ${result.errors.join('; ')}` : ''));
  } catch (e) {
    result.error = String(e?.message ?? e);
    console.error(`  ${def.label} ${conns}: ${result.error}\n${h.out}`);
  }
  return h;
}

async function teardown(h) {
  if (h.gens.length) h.result.droppedByServer = (await statsAll(h.gens)).reduce((s, x) => s + x.dropped, 0);
  await Promise.all(h.gens.map((g) => g.quit()));
  await stopChild(h.srv.child);
  h.srv.cleanup?.();
  if (h.srv.child.exitCode) h.result.serverExit = h.srv.child.exitCode;
  await sleep(1_000);
}

function cpuSampler(h) {
  const srvPids = h.srv.pids();
  return () => ({
    srv: srvPids.reduce((s, p) => s + cpuSecs(p), 0),
    cli: h.gens.reduce((s, g) => s + cpuSecs(g.child.pid), 0),
    cores: coreTimes(),
  });
}

/** One broadcast burst; the clock runs from the first publish to the last delivery. */
async function fanoutRound(h, opts, rep) {
  const subs = h.result.ready;
  const cpu = cpuSampler(h);
  await statsAll(h.gens, 'reset');
  const c0 = cpu();
  const t0 = nowUs();
  await h.publisher.burst('bench', opts.burst);
  const tPublished = nowUs();
  await drain(h.gens, subs * opts.burst);
  const st = await statsAll(h.gens, 'hist');
  const c1 = cpu();
  const delivered = st.reduce((s, x) => s + x.deliveries, 0);
  const tLast = Math.max(...st.map((x) => x.last_delivery_us));
  const secs = (tLast - t0) / 1e6;
  const round = {
    publications: opts.burst,
    subscribers: subs,
    expected: subs * opts.burst,
    delivered,
    secs: +secs.toFixed(3),
    publishSecs: +((tPublished - t0) / 1e6).toFixed(3),
    deliveriesPerSec: Math.round(delivered / secs),
    latency: mergeLatency(st),
    serverCpuPct: Math.round(((c1.srv - c0.srv) / secs) * 100),
    clientCpuPct: Math.round(((c1.cli - c0.cli) / secs) * 100),
    serverCore: coreBusyPct(c0.cores, c1.cores, SERVER_CPU),
    clientCore: coreBusyPct(c0.cores, c1.cores, CLIENT_CPU),
    publishErrors: h.publisher.errors,
  };
  console.error(`  ${h.def.label} fan-out #${rep + 1}: ${delivered}/${subs * opts.burst} in ${secs.toFixed(2)} s = ${round.deliveriesPerSec}/s ` +
    `(server process CPU ${round.serverCpuPct}%, loadgen CPU ${round.clientCpuPct}%; ` +
    `core ${SERVER_CPU} busy ${round.serverCore?.busy}% (softirq ${round.serverCore?.softirq}%), core ${CLIENT_CPU} busy ${round.clientCore?.busy}%)`);
  return round;
}

/** Publications at a fixed rate, well below saturation: publish→deliver latency. */
async function pacedRound(h, opts, rep) {
  const subs = h.result.ready;
  await statsAll(h.gens, 'reset');
  const n = await h.publisher.paced('bench', opts.rate, opts.duration);
  await drain(h.gens, subs * n);
  const st = await statsAll(h.gens, 'hist');
  const delivered = st.reduce((s, x) => s + x.deliveries, 0);
  const latency = mergeLatency(st);
  console.error(`  ${h.def.label} paced #${rep + 1} ${opts.rate}/s × ${opts.duration} s: ${delivered}/${subs * n} delivered, ` +
    `p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms`);
  return { publications: n, expected: subs * n, delivered, st, latency };
}

/**
 * Fan-out and latency, interleaved: every server holds its subscribers while the others
 * run, and rounds go server by server (rotating the order), so slow drifts in the machine's
 * background load spread over all servers instead of landing on one.
 */
async function fanoutPhase(held, opts) {
  for (const h of held) {
    h.publisher = makePublisher(h.port, h.def.publish, opts.payload, opts.publishConcurrency);
    await h.publisher.one('bench'); // creates the channel and warms the publish path
    await drain(h.gens, h.result.ready);
    h.rounds = [];
    h.paced = [];
  }
  for (let rep = 0; rep < opts.repeat; rep++) {
    const order = held.map((_, i) => held[(i + rep) % held.length]);
    for (const h of order) { h.rounds.push(await fanoutRound(h, opts, rep)); await sleep(500); }
  }
  for (let rep = 0; rep < opts.repeat; rep++) {
    const order = held.map((_, i) => held[(i + rep) % held.length]);
    for (const h of order) { h.paced.push(await pacedRound(h, opts, rep)); await sleep(500); }
  }
  for (const h of held) {
    const med = median(h.rounds.map((r) => r.deliveriesPerSec));
    h.result.fanout = { ...h.rounds.find((r) => r.deliveriesPerSec === med), rounds: h.rounds.map((r) => r.deliveriesPerSec), rawRounds: h.rounds };
    const all = h.paced.flatMap((p) => p.st);
    h.result.paced = {
      ratePerSec: opts.rate,
      secs: opts.duration * opts.repeat,
      publications: h.paced.reduce((s, p) => s + p.publications, 0),
      expected: h.paced.reduce((s, p) => s + p.expected, 0),
      delivered: h.paced.reduce((s, p) => s + p.delivered, 0),
      latency: mergeLatency(all),
      rounds: h.paced.map((p) => p.latency),
      publishErrors: h.publisher.errors,
    };
    h.publisher.close();
  }
}

// ---------------------------------------------------------------- report

const fmt = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v) ? '—' : Number(v).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

function markdown(results, opts) {
  const lines = [];
  lines.push('| Server | Connections | Ready | Accept rate, subscribed (conn/s) | WebSocket upgrades/s | RSS before → after (MB) | RSS per idle conn (KB) |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|');
  for (const r of results) {
    lines.push(`| ${SERVERS[r.server].label} | ${fmt(r.conns)} | ${fmt(r.ready)} | ${fmt(r.acceptPerSec)} | ${fmt(r.upgradePerSec)} | ${fmt(r.rssBeforeMb, 1)} → ${fmt(r.rssAfterMb, 1)} | ${fmt(r.kbPerConn, 2)} |`);
  }
  lines.push('');
  lines.push(`| Server | Subscribers | Fan-out deliveries/s, median (rounds) | Burst p50 / p99 (ms) | Server CPU | Client CPU | Paced ${opts.rate}/s, ${opts.repeat} × ${opts.duration} s: delivered | Paced p50 (ms) | Paced p99 (ms) |`);
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of results.filter((x) => x.fanout)) {
    const f = r.fanout;
    const p = r.paced;
    lines.push(`| ${SERVERS[r.server].label} | ${fmt(f.subscribers)} | ${fmt(f.deliveriesPerSec)} (${f.rounds.map((x) => fmt(x)).join(', ')}) | ${fmt(f.latency.p50Ms, 1)} / ${fmt(f.latency.p99Ms, 1)} | ${f.serverCpuPct}% | ${f.clientCpuPct}% | ` +
      `${p ? `${fmt(p.delivered)} / ${fmt(p.expected)}` : '—'} | ${p ? fmt(p.latency.p50Ms, 2) : '—'} | ${p ? fmt(p.latency.p99Ms, 2) : '—'} |`);
  }
  const by = (s, c) => results.find((r) => r.server === s && r.conns === c);
  const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : '—');
  const peers = ['nchan', 'socketio'].filter((p) => opts.servers.includes(p));
  const base = ['herald', 'herald-nchan'].find((x) => opts.servers.includes(x));
  if (base && peers.length) {
    lines.push('');
    lines.push(`| Ratio | ${peers.map((p) => `${SERVERS[base].label} / ${SERVERS[p].label}`).join(' | ')} |`);
    lines.push(`|---|${peers.map(() => '---:').join('|')}|`);
    for (const c of opts.conns) {
      lines.push(`| RSS per conn @ ${fmt(c)} (lower is better) | ${peers.map((p) => ratio(by(base, c)?.kbPerConn, by(p, c)?.kbPerConn)).join(' | ')} |`);
      lines.push(`| Accept rate @ ${fmt(c)} (higher is better) | ${peers.map((p) => ratio(by(base, c)?.acceptPerSec, by(p, c)?.acceptPerSec)).join(' | ')} |`);
    }
    const fc = opts.fanoutConns;
    lines.push(`| Fan-out deliveries/s (higher is better) | ${peers.map((p) => ratio(by(base, fc)?.fanout?.deliveriesPerSec, by(p, fc)?.fanout?.deliveriesPerSec)).join(' | ')} |`);
    lines.push(`| Paced p50 (lower is better) | ${peers.map((p) => ratio(by(base, fc)?.paced?.latency.p50Ms, by(p, fc)?.paced?.latency.p50Ms)).join(' | ')} |`);
    lines.push(`| Paced p99 (lower is better) | ${peers.map((p) => ratio(by(base, fc)?.paced?.latency.p99Ms, by(p, fc)?.paced?.latency.p99Ms)).join(' | ')} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  // The orchestrator and publisher share the client core; the server core stays for the server.
  execFileSync('taskset', ['-a', '-p', '-c', CLIENT_CPU, String(process.pid)], { stdio: 'ignore' });
  benchProcessSetup();
  if (opts.fanoutConns && !opts.conns.includes(opts.fanoutConns)) opts.conns = [...opts.conns, opts.fanoutConns].sort((a, b) => a - b);
  buildLoadgen();
  if (opts.servers.some((s) => s.startsWith('herald')) && !existsSync(path.join(path.dirname(path.dirname(HERALD_BIN)), 'dist'))) {
    throw new Error('Herald is not built: run `npm run build` first');
  }
  const scratch = path.join(os.tmpdir(), `herald-bench-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  const machine = machineInfo();
  console.error(`bench: ${opts.servers.join(', ')} × ${opts.conns.join(', ')} connections; machine ${machine.cpus} cores, ` +
    `${machine.memTotalGb} GB, Linux ${machine.kernel}, Node ${machine.node}`);
  const portRef = { next: opts.portBase };
  const results = [];
  const started = new Date().toISOString();
  const loadBefore = readFileSync('/proc/loadavg', 'utf8').trim();
  for (const conns of opts.conns) {
    const held = [];
    for (const name of opts.servers) {
      const h = await setup(name, conns, opts, scratch, portRef);
      results.push(h.result);
      if (conns === opts.fanoutConns && h.result.ready > 0 && !h.result.error) held.push(h);
      else await teardown(h);
    }
    if (held.length) {
      try {
        await fanoutPhase(held, opts);
      } catch (e) {
        console.error(`fan-out phase failed: ${e?.stack ?? e}`);
      }
      for (const h of held) await teardown(h);
    }
  }
  rmSync(scratch, { recursive: true, force: true });
  const loadAfter = readFileSync('/proc/loadavg', 'utf8').trim();
  const out = { started, finished: new Date().toISOString(), machine, loadavg: { before: loadBefore, after: loadAfter }, options: opts, results };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `bench-${started.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(markdown(results, opts));
  console.error(`\nresults: ${path.relative(ROOT, file)}`);
}

main().catch((e) => {
  console.error(e?.stack ?? e);
  process.exitCode = 1;
});
