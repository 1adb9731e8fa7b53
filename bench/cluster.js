#!/usr/bin/env node
// Cluster benchmark: 2 nodes + Redis, Herald beside Socket.IO 4.8 (@socket.io/redis-adapter) and
// Nchan (nchan_redis_url), same C load client, same publisher, same run.
//
//   node bench/cluster.js [--servers herald,socketio,nchan] [--conns 10000] [--users 2000]
//                         [--window 32] [--c2c-secs 10] [--burst 100] [--repeat 3] [--rate 2]
//                         [--duration 5] [--payload 64]
//
// Each server runs as two nodes, A pinned to core 0 and B to core 1, both on the machine's
// Redis under a key prefix of their own (deleted afterwards). Load clients, the publisher and
// Redis are not pinned (there are only two cores). Measured, interleaved across servers:
//   1. per-user delivery across nodes: `users` connections on node B each subscribed to its own
//      channel m<i>; the publisher keeps `window` HTTP publishes in flight to node A, channel
//      after channel, for c2c-secs; messages/s (first publish → last delivery) and
//      publish→deliver latency of every message. The same with the recipients on node A
//      ("same node") shows what the hop through Redis to the other node costs.
//   2. broadcast: `conns` subscribers (channel "bench" and their own u<i>), half on each node;
//      bursts of `burst` publications to node A (deliveries/s, clock stopped at the last
//      delivery), then publications at a paced `rate`/s (latency p50/p99).
// Results: JSON in bench/results/, markdown on stdout. Never part of `npm test`.
import { mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ROOT, RESULTS_DIR, benchProcessSetup, buildLoadgen, heraldEnv, childPids, cpuSecs, drain, loadavg, machineInfo, makePublisher,
  median, mergeLatency, nowUs, openConnections, redisCleanup, rssKb, sh, spawnAt, statsAll, stopChild, waitPort,
} from './common.js';

const REDIS_URL = 'redis://127.0.0.1:6379';
const HERALD_BIN = path.join(ROOT, 'bin/herald.js');
const NODE_CPUS = ['0', '1'];

function parseArgs(argv) {
  const opts = {
    servers: ['herald', 'socketio', 'nchan'],
    conns: 10_000,
    users: 2_000,
    window: 32,
    c2cSecs: 10,
    burst: 100,
    repeat: 3,
    rate: 2,
    duration: 5,
    payload: 64,
    concurrency: 256,
    publishConcurrency: 8,
    portBase: 19_100 + Math.floor(Math.random() * 400) * 8,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = argv[i + 1];
    const num = () => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${a} needs a number`);
      i++;
      return n;
    };
    switch (a) {
      case '--servers': opts.servers = v.split(',').filter(Boolean); i++; break;
      case '--conns': opts.conns = num(); break;
      case '--users': opts.users = num(); break;
      case '--window': opts.window = num(); break;
      case '--c2c-secs': opts.c2cSecs = num(); break;
      case '--burst': opts.burst = num(); break;
      case '--repeat': opts.repeat = num(); break;
      case '--rate': opts.rate = num(); break;
      case '--duration': opts.duration = num(); break;
      case '--payload': opts.payload = num(); break;
      case '--port-base': opts.portBase = num(); break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  for (const s of opts.servers) if (!SERVERS[s]) throw new Error(`unknown server ${s}`);
  return opts;
}

// ---------------------------------------------------------------- servers

/**
 * Each server: how to start one node (pinned, on the shared Redis under `prefix`), the pids of
 * a node, the loadgen script for a connection subscribed to the given channels (%d = its
 * index), and the publisher's request for a channel.
 */
const SERVERS = {
  herald: {
    label: 'Herald',
    start({ port, cpu, prefix, scratch }) {
      const dataDir = path.join(scratch, `herald-${port}`);
      mkdirSync(dataDir, { recursive: true });
      const child = spawnAt(cpu, process.execPath, [HERALD_BIN, 'serve', '--port', String(port), '--host', '127.0.0.1',
        '--redis', REDIS_URL, '--redis.prefix', prefix, '--data-dir', dataDir],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: heraldEnv() });
      return { child, pids: () => [child.pid] };
    },
    spec: (channels) => ({
      path: '/connection/websocket',
      send: ['{"id":1,"cmd":"connect"}', ...channels.map((c, k) => `{"id":${k + 2},"cmd":"subscribe","channel":"${c}"}`)],
    }),
    publish: { path: () => '/api/publish', body: (channel, data) => JSON.stringify({ channel, data }) },
  },
  socketio: {
    label: 'Socket.IO + redis-adapter',
    start({ port, cpu, prefix }) {
      const child = spawnAt(cpu, process.execPath, [path.join(ROOT, 'bench/peers/socketio-server.js'), String(port), REDIS_URL, `${prefix}sio`],
        { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
      return { child, pids: () => [child.pid] };
    },
    spec: (channels) => ({
      path: '/socket.io/?EIO=4&transport=websocket',
      pre: 1,
      send: ['40', ...channels.map((c, k) => `42${k + 1}["subscribe","${c}"]`)],
      ping: '2',
      pong: '3',
    }),
    publish: { path: (channel) => `/publish/${channel}`, body: (_channel, data) => JSON.stringify(data) },
  },
  nchan: {
    label: 'Nchan + Redis',
    start({ port, cpu, prefix, scratch }) {
      const dir = path.join(scratch, `nchan-${port}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(path.join(dir, 'logs'), { recursive: true });
      mkdirSync(path.join(dir, 'tmp'), { recursive: true });
      const conf = readFileSync(path.join(ROOT, 'bench/peers/nchan-cluster.conf'), 'utf8')
        .replaceAll('PREFIX', dir).replaceAll('PORT', String(port))
        .replaceAll('REDIS_URL', REDIS_URL).replaceAll('NAMESPACE', `${prefix}nchan`);
      writeFileSync(path.join(dir, 'nginx.conf'), conf);
      const child = spawnAt(cpu, 'nginx', ['-c', path.join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      return { child, pids: () => [child.pid, ...childPids(child.pid)], log: path.join(dir, 'logs', 'error.log') };
    },
    spec: (channels) => ({ path: `/sub/${channels.join(',')}` }),
    publish: { path: (channel) => `/pub/${channel}`, body: (_channel, data) => JSON.stringify(data) },
  },
};

// ---------------------------------------------------------------- setup

async function startCluster(name, opts, scratch, portRef, prefix) {
  const def = SERVERS[name];
  const nodes = NODE_CPUS.map((cpu) => {
    const port = portRef.next++;
    const srv = def.start({ port, cpu, prefix, scratch });
    const n = { port, srv, out: '' };
    srv.child.stdout.on('data', (d) => { n.out = (n.out + d).slice(-4000); });
    srv.child.stderr.on('data', (d) => { n.out = (n.out + d).slice(-4000); });
    return n;
  });
  const h = { name, def, nodes, result: { server: name }, groups: {} };
  await Promise.all(nodes.map((n) => waitPort(n.port)));
  await sleep(1_000);
  const rss0 = nodes.map((n) => n.srv.pids().reduce((s, p) => s + rssKb(p), 0));
  const half = Math.floor(opts.conns / 2);
  const open = async (key, node, spec, conns, idBase) => {
    const o = await openConnections({ port: nodes[node].port, spec, conns, idBase, concurrency: opts.concurrency, tag: `${name}-${key}` });
    h.groups[key] = o.gens;
    h.result[`ready_${key}`] = { conns, ready: o.ready, secs: o.secs, acceptPerSec: o.acceptPerSec, errors: o.errors };
    console.error(`  ${def.label} ${key}: ${o.ready}/${conns} ready on node ${'AB'[node]} in ${o.secs} s (${o.acceptPerSec}/s)${o.errors.length ? `; ${o.errors.join('; ')}` : ''}`);
  };
  await open('bcastA', 0, def.spec(['bench', 'u%d']), half, 0);
  await open('bcastB', 1, def.spec(['bench', 'u%d']), opts.conns - half, half);
  await open('c2cB', 1, def.spec(['m%d']), opts.users, 0);
  await open('c2cA', 0, def.spec(['l%d']), opts.users, 0);
  await sleep(3_000);
  const rss1 = nodes.map((n) => n.srv.pids().reduce((s, p) => s + rssKb(p), 0));
  const total = opts.conns + 2 * opts.users;
  h.result.rssMb = { before: rss0.map((x) => +(x / 1024).toFixed(1)), after: rss1.map((x) => +(x / 1024).toFixed(1)) };
  h.result.kbPerConn = +((rss1[0] + rss1[1] - rss0[0] - rss0[1]) / total).toFixed(2);
  return h;
}

async function stopCluster(h) {
  const all = Object.values(h.groups).flat();
  h.result.droppedByServer = (await statsAll(all)).reduce((s, x) => s + x.dropped, 0);
  await Promise.all(all.map((g) => g.quit()));
  await Promise.all(h.nodes.map((n) => stopChild(n.srv.child)));
  if (h.nodes.some((n) => n.srv.child.exitCode)) h.result.nodeExit = h.nodes.map((n) => n.srv.child.exitCode);
}

// ---------------------------------------------------------------- rounds

const redisPid = Number(sh('sh', ['-c', 'pidof redis-server | cut -d" " -f1'])) || 0;

function cpuSampler(h) {
  const pids = h.nodes.map((n) => n.srv.pids());
  return () => {
    const self = process.cpuUsage();
    return { nodes: pids.map((ps) => ps.reduce((s, p) => s + cpuSecs(p), 0)), redis: redisPid ? cpuSecs(redisPid) : 0, publisher: (self.user + self.system) / 1e6 };
  };
}
const cpuPct = (c0, c1, secs) => ({
  nodeA: Math.round(((c1.nodes[0] - c0.nodes[0]) / secs) * 100),
  nodeB: Math.round(((c1.nodes[1] - c0.nodes[1]) / secs) * 100),
  redis: Math.round(((c1.redis - c0.redis) / secs) * 100),
  publisher: Math.round(((c1.publisher - c0.publisher) / secs) * 100),
});

/** Per-user messages: closed loop of `window` publishes to node A, recipients in `group`. */
async function c2cRound(h, opts, group, prefixCh, rep) {
  const gens = h.groups[group];
  const channels = Array.from({ length: opts.users }, (_, i) => `${prefixCh}${i}`);
  await statsAll(gens, 'reset');
  const cpu = cpuSampler(h);
  const c0 = cpu();
  const errors0 = h.publisher.errors;
  const t0 = nowUs();
  const sent = await h.publisher.closedLoop(channels, opts.window, opts.c2cSecs);
  const got = await drain(gens, sent);
  const st = await statsAll(gens, 'hist');
  const c1 = cpu();
  const tLast = Math.max(...st.map((x) => x.last_delivery_us));
  const secs = (tLast - t0) / 1e6;
  const r = {
    sent, delivered: got, secs: +secs.toFixed(2), msgsPerSec: Math.round(got / secs),
    latency: mergeLatency(st), cpu: cpuPct(c0, c1, secs), publishErrors: h.publisher.errors - errors0, load: loadavg(),
  };
  console.error(`  ${h.def.label} ${group} #${rep + 1}: ${got}/${sent} in ${r.secs} s = ${r.msgsPerSec}/s, p50 ${r.latency.p50Ms} ms, ` +
    `p99 ${r.latency.p99Ms} ms (CPU A ${r.cpu.nodeA}%, B ${r.cpu.nodeB}%, redis ${r.cpu.redis}%, publisher ${r.cpu.publisher}%; load ${r.load})`);
  return r;
}

async function fanoutRound(h, opts, rep) {
  const gens = [...h.groups.bcastA, ...h.groups.bcastB];
  const subs = h.result.ready_bcastA.ready + h.result.ready_bcastB.ready;
  await statsAll(gens, 'reset');
  const cpu = cpuSampler(h);
  const c0 = cpu();
  const t0 = nowUs();
  await h.publisher.burst('bench', opts.burst);
  const got = await drain(gens, subs * opts.burst);
  const st = await statsAll(gens, 'hist');
  const c1 = cpu();
  const secs = (Math.max(...st.map((x) => x.last_delivery_us)) - t0) / 1e6;
  const perNode = ['bcastA', 'bcastB'].map((k) => st.filter((x) => x.label.includes(`-${k}-`)).reduce((s, x) => s + x.deliveries, 0));
  const r = { expected: subs * opts.burst, delivered: got, perNode, secs: +secs.toFixed(3), deliveriesPerSec: Math.round(got / secs),
    latency: mergeLatency(st), cpu: cpuPct(c0, c1, secs), load: loadavg() };
  console.error(`  ${h.def.label} broadcast #${rep + 1}: ${got}/${r.expected} (A ${perNode[0]}, B ${perNode[1]}) in ${r.secs} s = ${r.deliveriesPerSec}/s ` +
    `(CPU A ${r.cpu.nodeA}%, B ${r.cpu.nodeB}%, redis ${r.cpu.redis}%; load ${r.load})`);
  return r;
}

async function pacedRound(h, opts, rep) {
  const gens = [...h.groups.bcastA, ...h.groups.bcastB];
  const subs = h.result.ready_bcastA.ready + h.result.ready_bcastB.ready;
  await statsAll(gens, 'reset');
  const n = await h.publisher.paced('bench', opts.rate, opts.duration);
  const got = await drain(gens, subs * n);
  const st = await statsAll(gens, 'hist');
  const byNode = ['bcastA', 'bcastB'].map((k) => mergeLatency(st.filter((x) => x.label.includes(`-${k}-`))));
  const latency = mergeLatency(st);
  console.error(`  ${h.def.label} paced #${rep + 1}: ${got}/${subs * n}, p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms ` +
    `(node A p99 ${byNode[0].p99Ms}, node B p99 ${byNode[1].p99Ms}; load ${loadavg()})`);
  return { expected: subs * n, delivered: got, st, latency, byNode };
}

/** Run every kind of round `repeat` times, rotating the order of the servers each time. */
async function phases(held, opts) {
  for (const h of held) {
    const pub = h.def.publish;
    h.publisher = makePublisher(h.nodes[0].port, pub, opts.payload, Math.max(opts.window, opts.publishConcurrency));
    await h.publisher.one('bench');
    await drain([...h.groups.bcastA, ...h.groups.bcastB], h.result.ready_bcastA.ready + h.result.ready_bcastB.ready);
    Object.assign(h, { cross: [], local: [], fan: [], paced: [] });
  }
  const rotate = (rep) => held.map((_, i) => held[(i + rep) % held.length]);
  // The broadcast publisher keeps 8 in flight; the per-user one `window`.
  for (let rep = 0; rep < opts.repeat; rep++) {
    for (const h of rotate(rep)) {
      h.cross.push(await c2cRound(h, opts, 'c2cB', 'm', rep));
      await sleep(500);
      h.local.push(await c2cRound(h, opts, 'c2cA', 'l', rep));
      await sleep(500);
    }
  }
  for (let rep = 0; rep < opts.repeat; rep++) {
    for (const h of rotate(rep)) { h.fan.push(await fanoutRound(h, opts, rep)); await sleep(500); }
  }
  for (let rep = 0; rep < opts.repeat; rep++) {
    for (const h of rotate(rep)) { h.paced.push(await pacedRound(h, opts, rep)); await sleep(500); }
  }
  for (const h of held) {
    const pick = (rounds, key) => {
      const m = median(rounds.map((r) => r[key]));
      return { ...rounds.find((r) => r[key] === m), rounds: rounds.map((r) => r[key]), all: rounds };
    };
    h.result.c2cCross = pick(h.cross, 'msgsPerSec');
    h.result.c2cLocal = pick(h.local, 'msgsPerSec');
    h.result.fanout = pick(h.fan, 'deliveriesPerSec');
    h.result.paced = {
      ratePerSec: opts.rate, secs: opts.duration * opts.repeat,
      expected: h.paced.reduce((s, p) => s + p.expected, 0), delivered: h.paced.reduce((s, p) => s + p.delivered, 0),
      latency: mergeLatency(h.paced.flatMap((p) => p.st)),
      byNode: ['bcastA', 'bcastB'].map((k) => mergeLatency(h.paced.flatMap((p) => p.st.filter((x) => x.label.includes(`-${k}-`))))),
      rounds: h.paced.map((p) => p.latency),
    };
    h.result.publishErrors = h.publisher.errors;
    h.publisher.close();
  }
}

// ---------------------------------------------------------------- report

const fmt = (v, d = 0) => (v === null || v === undefined || Number.isNaN(v) ? '—' : Number(v).toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d }));

function markdown(results, opts) {
  const L = [];
  const label = (r) => SERVERS[r.server].label;
  L.push(`Per-user messages, ${fmt(opts.users)} recipients, ${opts.window} publishes in flight to node A for ${opts.c2cSecs} s (median of ${opts.repeat}):`);
  L.push('');
  L.push('| Server | Recipients on | msgs/s (rounds) | p50 (ms) | p99 (ms) | CPU node A / B / Redis / publisher | delivered / sent |');
  L.push('|---|---|---:|---:|---:|---|---:|');
  for (const r of results) {
    for (const [k, where] of [['c2cCross', 'node B (cross-node)'], ['c2cLocal', 'node A (same node)']]) {
      const c = r[k];
      if (!c) continue;
      L.push(`| ${label(r)} | ${where} | ${fmt(c.msgsPerSec)} (${c.rounds.map((x) => fmt(x)).join(', ')}) | ${fmt(c.latency.p50Ms, 1)} | ${fmt(c.latency.p99Ms, 1)} | ` +
        `${c.cpu.nodeA} / ${c.cpu.nodeB} / ${c.cpu.redis} / ${c.cpu.publisher} % | ${fmt(c.delivered)} / ${fmt(c.sent)} |`);
    }
  }
  L.push('');
  L.push(`Broadcast to ${fmt(opts.conns)} subscribers, half on each node, published to node A:`);
  L.push('');
  L.push(`| Server | Burst of ${opts.burst}: deliveries/s, median (rounds) | CPU node A / B / Redis | Paced ${opts.rate}/s, ${opts.repeat} × ${opts.duration} s: delivered | p50 (ms) | p99 (ms) | p99 node A / node B (ms) | RSS per conn (KB) |`);
  L.push('|---|---:|---|---:|---:|---:|---:|---:|');
  for (const r of results.filter((x) => x.fanout)) {
    const f = r.fanout;
    const p = r.paced;
    L.push(`| ${label(r)} | ${fmt(f.deliveriesPerSec)} (${f.rounds.map((x) => fmt(x)).join(', ')}) | ${f.cpu.nodeA} / ${f.cpu.nodeB} / ${f.cpu.redis} % | ` +
      `${fmt(p.delivered)} / ${fmt(p.expected)} | ${fmt(p.latency.p50Ms, 1)} | ${fmt(p.latency.p99Ms, 1)} | ${fmt(p.byNode[0].p99Ms, 1)} / ${fmt(p.byNode[1].p99Ms, 1)} | ${fmt(r.kbPerConn, 2)} |`);
  }
  const base = results.find((r) => r.server === 'herald' && r.fanout);
  const peers = results.filter((r) => r.server !== 'herald' && r.fanout);
  if (base && peers.length) {
    const ratio = (a, b) => (a && b ? (a / b).toFixed(2) : '—');
    L.push('');
    L.push(`| Ratio | ${peers.map((p) => `Herald / ${label(p)}`).join(' | ')} |`);
    L.push(`|---|${peers.map(() => '---:').join('|')}|`);
    const row = (name, get) => L.push(`| ${name} | ${peers.map((p) => ratio(get(base), get(p))).join(' | ')} |`);
    row('Cross-node per-user msgs/s (higher is better)', (r) => r.c2cCross.msgsPerSec);
    row('Cross-node per-user p50 (lower is better)', (r) => r.c2cCross.latency.p50Ms);
    row('Cross-node per-user p99 (lower is better)', (r) => r.c2cCross.latency.p99Ms);
    row('Broadcast deliveries/s (higher is better)', (r) => r.fanout.deliveriesPerSec);
    row('Broadcast paced p50 (lower is better)', (r) => r.paced.latency.p50Ms);
    row('Broadcast paced p99 (lower is better)', (r) => r.paced.latency.p99Ms);
  }
  return L.join('\n');
}

// ---------------------------------------------------------------- main

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  benchProcessSetup();
  buildLoadgen();
  const scratch = path.join(os.tmpdir(), `herald-cluster-bench-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  const prefix = `herald-bench-${process.pid}:`;
  const machine = machineInfo();
  const started = new Date().toISOString();
  const loadBefore = loadavg();
  console.error(`cluster bench: ${opts.servers.join(', ')}; ${opts.conns} broadcast subscribers, ${opts.users} per-user recipients per node; ` +
    `Redis prefix ${prefix}; load ${loadBefore}`);
  const portRef = { next: opts.portBase };
  const held = [];
  try {
    for (const name of opts.servers) {
      try {
        held.push(await startCluster(name, opts, scratch, portRef, prefix));
      } catch (e) {
        console.error(`  ${name}: ${e?.stack ?? e}`);
      }
    }
    await phases(held, opts);
  } finally {
    for (const h of held) await stopCluster(h);
    for (const h of held) {
      if (h.name !== 'nchan') continue;
      // What nginx logged (per node): the count of [error]/[warn] lines and the distinct messages.
      h.result.nchanLog = h.nodes.map((n) => ({
        errors: Number(sh('sh', ['-c', `grep -c '\\[error\\]' ${n.srv.log} || true`])),
        warns: Number(sh('sh', ['-c', `grep -c '\\[warn\\]' ${n.srv.log} || true`])),
        distinct: sh('sh', ['-c', `sed -E 's/^[0-9\\/: ]+//; s/[0-9]+#[0-9]+: \\*?[0-9]* ?//; s/client: .*//' ${n.srv.log} | sort | uniq -c | sort -rn | head -8`]),
      }));
    }
    rmSync(scratch, { recursive: true, force: true });
    console.error(`redis keys removed: ${redisCleanup(prefix)}`);
  }
  const results = held.map((h) => h.result);
  const out = { started, finished: new Date().toISOString(), machine, loadavg: { before: loadBefore, after: loadavg() }, options: opts, results };
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `cluster-${started.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
  console.log(markdown(results, opts));
  console.error(`\nresults: ${path.relative(ROOT, file)}`);
}

main().catch((e) => {
  console.error(e?.stack ?? e);
  process.exitCode = 1;
});
