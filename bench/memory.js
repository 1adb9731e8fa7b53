#!/usr/bin/env node
// Where the memory of an idle WebSocket subscriber goes. Each server gets a fresh process, a
// warm-up of 500 connections (opened, set up, closed), then --conns connections held idle from
// the C loadgen (as bench/run.js). Reported per added connection:
//   - RSS (/proc/<pid>/status VmRSS, as bench/run.js: after − before, no forced GC);
//   - for Herald, after a forced full GC (started with --expose-gc, read through a loopback-only
//     inspector session): JS heap used, JS heap committed (heapTotal), external memory (of which
//     ArrayBuffers), and the rest of RSS (native: libuv, OpenSSL, malloc arenas, code);
//   - kernel memory, not part of RSS: the server's sockets' buffers (`ss -tm`, skmem r+t+f of the
//     server side), host-wide TCP buffer pages (/proc/net/sockstat, both ends) and host-wide slab
//     (/proc/meminfo Slab, both ends: struct sock, inode, epoll items; other work on the host moves it);
//   - with --snapshot, a heap-snapshot diff of Herald by constructor: count and bytes per connection
//     (taking snapshots grows the process: read only the diff from such a run, not its RSS figures).
// Loopback only; every process stopped by pid. Never part of `npm test`.
//
//   node bench/memory.js [--servers herald,herald-nchan,nchan] [--conns 10000] [--snapshot]
//                        [--save-snapshot /tmp/prefix] [--herald-bin bin/herald.js] [--herald-b other/bin/herald.js] [--node-env MALLOC_ARENA_MAX=2] [--b-env …]
//   herald: native protocol, connect + subscribe `bench` + `u<i>`; herald-nchan / nchan: `/sub/bench`
//   (--nchan-path '/sub/bench,u%d' for two channels).
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import {
  RESULTS_DIR, ROOT, benchProcessSetup, buildLoadgen, childPids, freePort, heraldEnv, loadavg, openConnections, rssKb, sh, spawnAt,
  stopChild, waitPort,
} from './common.js';

const SERVER_CPU = '0';
const CLIENT_CPU = '1';
const WARMUP = 500;
const SETTLE_MS = 3_000;

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const conns = Number(option('conns', '10000'));
const snapshot = process.argv.includes('--snapshot');
const heraldA = path.resolve(option('herald-bin', path.join(ROOT, 'bin/herald.js')));
const heraldB = option('herald-b') ? path.resolve(option('herald-b')) : null;
const nchanPath = option('nchan-path', '/sub/bench');
const envOption = (name) => Object.fromEntries((option(name, '') || '').split(',').filter(Boolean).map((kv) => kv.split('=')));
/** Environment of the Herald processes (e.g. MALLOC_ARENA_MAX=2); --b-env for the B build only. */
const extraEnv = envOption('node-env');
const bEnv = envOption('b-env');
let servers = option('servers', 'herald,herald-nchan,nchan').split(',');
if (heraldB) servers = servers.flatMap((s) => (s.startsWith('herald') ? [s, `${s}-b`] : [s]));

const commitOf = (bin) => {
  const dir = path.dirname(path.dirname(bin));
  try {
    return readFileSync(path.join(dir, 'COMMIT'), 'utf8').trim();
  } catch {
    return sh('git', ['-C', dir, 'rev-parse', '--short', 'HEAD']);
  }
};

const nativeSpec = { path: '/connection/websocket', pre: 0, send: ['{"id":1,"cmd":"connect"}', '{"id":2,"cmd":"subscribe","channel":"bench"}', '{"id":3,"cmd":"subscribe","channel":"u%d"}'] };
const nchanSpec = { path: nchanPath, pre: 0, send: [] };

function startHerald(bin, port, env) {
  const child = spawnAt(SERVER_CPU, process.execPath, ['--expose-gc', '--inspect=127.0.0.1:0', bin, 'serve', '--port', String(port), '--host', '127.0.0.1'], {
    cwd: path.dirname(path.dirname(bin)),
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  const inspectorUrl = new Promise((resolve) => {
    readline.createInterface({ input: child.stderr }).on('line', (l) => {
      const m = /Debugger listening on (ws:\/\/\S+)/.exec(l);
      if (m) resolve(m[1]);
    });
  });
  child.stdout.resume();
  return { child, pids: () => [child.pid], inspectorUrl };
}

function startNchan(port, scratch) {
  const prefix = path.join(scratch, `nchan-${port}`);
  rmSync(prefix, { recursive: true, force: true });
  mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  const conf = readFileSync(path.join(ROOT, 'bench/peers/nchan.conf'), 'utf8').replaceAll('PREFIX', prefix).replaceAll('PORT', String(port));
  writeFileSync(path.join(prefix, 'nginx.conf'), conf);
  const child = spawnAt(SERVER_CPU, 'nginx', ['-c', path.join(prefix, 'nginx.conf'), '-p', prefix], { stdio: ['ignore', 'ignore', 'ignore'] });
  return { child, pids: () => [child.pid, ...childPids(child.pid)], cleanup: () => rmSync(prefix, { recursive: true, force: true }) };
}

/** A minimal Chrome DevTools Protocol session over the inspector's WebSocket. */
async function inspect(url) {
  const ws = new WebSocket(url, { maxPayload: 1 << 30 });
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let next = 1;
  const pending = new Map();
  let chunks = [];
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString());
    if (m.method === 'HeapProfiler.addHeapSnapshotChunk') chunks.push(m.params.chunk);
    else if (m.id && pending.has(m.id)) {
      pending.get(m.id)(m);
      pending.delete(m.id);
    }
  });
  const call = (method, params = {}) =>
    new Promise((resolve) => {
      const id = next++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  return {
    async memory() {
      const r = await call('Runtime.evaluate', { expression: 'gc(); gc(); JSON.stringify(process.memoryUsage())', returnByValue: true });
      return JSON.parse(r.result.result.value);
    },
    async snapshot(file) {
      chunks = [];
      await call('HeapProfiler.takeHeapSnapshot', { reportProgress: false });
      const text = chunks.join('');
      chunks = [];
      if (file) writeFileSync(file, text);
      return summarize(JSON.parse(text));
    },
    close: () => ws.close(),
  };
}

/** Live objects of a heap snapshot by type and constructor: count and self size. */
function summarize(snap) {
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [ti, ni, si] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
  const byName = new Map();
  const nodes = snap.nodes;
  for (let i = 0; i < nodes.length; i += f.length) {
    const type = types[nodes[i + ti]];
    let name = snap.strings[nodes[i + ni]];
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string') name = '(string)';
    else if (type === 'code') name = '(code)';
    else if (type === 'number') name = '(number)';
    else if (name.length > 60) name = name.slice(0, 60);
    const key = `${type}:${name}`;
    const e = byName.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += nodes[i + si];
    byName.set(key, e);
  }
  return byName;
}

/** The server side's kernel socket buffers: sum of skmem r (receive), t (send) and f (forward alloc), bytes. */
function serverSkmem(port) {
  const out = sh('ss', ['-tmnH', 'state', 'established', `( sport = :${port} )`]);
  let bytes = 0;
  let sockets = 0;
  for (const m of out.matchAll(/skmem:\(r(\d+),rb\d+,t(\d+),tb\d+,f(\d+)/g)) {
    bytes += Number(m[1]) + Number(m[2]) + Number(m[3]);
    sockets++;
  }
  return { bytes, sockets };
}
const tcpMemPages = () => Number(/TCP: .* mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1]);
const slabKb = () => Number(/Slab:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1]);

async function measure(name, scratch) {
  const port = await freePort();
  const isHerald = name.startsWith('herald');
  const bin = name.endsWith('-b') ? heraldB : heraldA;
  const env = { ...heraldEnv(), ...extraEnv, ...(name.endsWith('-b') ? bEnv : {}) };
  const srv = isHerald ? startHerald(bin, port, env) : startNchan(port, scratch);
  const spec = name.startsWith('herald-nchan') || name === 'nchan' ? nchanSpec : nativeSpec;
  const result = { server: name, commit: isHerald ? commitOf(bin) : 'nginx', conns, path: spec.path, env: isHerald ? { ...extraEnv, ...(name.endsWith('-b') ? bEnv : {}) } : {} };
  let insp;
  const gens = [];
  try {
    await waitPort(port);
    if (isHerald) insp = await inspect(await srv.inspectorUrl);
    await sleep(500);
    const warm = await openConnections({ port, spec, conns: WARMUP, concurrency: 256, tag: `${name}-warm`, cpu: CLIENT_CPU });
    await Promise.all(warm.gens.map((g) => g.quit()));
    await sleep(2_000);
    // The first snapshot comes before every reading: its own memory must not count as the connections'.
    const snapBefore = insp && snapshot ? await insp.snapshot() : undefined;
    const before = { rss: srv.pids().reduce((s, p) => s + rssKb(p), 0), tcpPages: tcpMemPages(), slab: slabKb(), skmem: serverSkmem(port) };
    if (insp) before.mem = await insp.memory();
    if (insp) before.rssGc = rssKb(srv.child.pid);
    const open = await openConnections({ port, spec, conns, concurrency: 256, tag: `${name}-${conns}`, cpu: CLIENT_CPU });
    gens.push(...open.gens);
    await sleep(SETTLE_MS);
    const after = { rss: srv.pids().reduce((s, p) => s + rssKb(p), 0), tcpPages: tcpMemPages(), slab: slabKb(), skmem: serverSkmem(port) };
    const n = open.ready;
    Object.assign(result, {
      ready: n,
      acceptPerSec: open.acceptPerSec,
      rssKbPerConn: +((after.rss - before.rss) / n).toFixed(2),
      kernel: {
        serverSocketsKbPerConn: +((after.skmem.bytes - before.skmem.bytes) / 1024 / n).toFixed(3),
        serverSockets: after.skmem.sockets,
        tcpBufferKbPerConnBothEnds: +(((after.tcpPages - before.tcpPages) * 4) / n).toFixed(3),
        slabKbPerConnBothEnds: +((after.slab - before.slab) / n).toFixed(2),
      },
    });
    if (insp) {
      after.mem = await insp.memory();
      const rssGc = rssKb(srv.child.pid);
      const d = (k) => +((after.mem[k] - before.mem[k]) / 1024 / n).toFixed(3);
      const rssAfterGc = +((rssGc - before.rssGc) / n).toFixed(2);
      result.afterGc = {
        rssKbPerConn: rssAfterGc,
        heapUsedKb: d('heapUsed'),
        heapTotalKb: d('heapTotal'),
        externalKb: d('external'),
        arrayBuffersKb: d('arrayBuffers'),
        restOfRssKb: +(rssAfterGc - d('heapTotal') - d('external')).toFixed(3),
      };
      if (snapshot) {
        const snapAfter = await insp.snapshot(option('save-snapshot') ? `${option('save-snapshot')}-${name}.heapsnapshot` : undefined);
        const rows = [];
        for (const [k, a] of snapAfter) {
          const b = snapBefore.get(k) ?? { count: 0, bytes: 0 };
          const db = a.bytes - b.bytes;
          if (Math.abs(db) / n >= 4) rows.push({ what: k, perConnCount: +((a.count - b.count) / n).toFixed(2), perConnBytes: +(db / n).toFixed(1) });
        }
        rows.sort((x, y) => y.perConnBytes - x.perConnBytes);
        result.snapshot = { totalBytesPerConn: +(rows.reduce((s, r) => s + r.perConnBytes, 0)).toFixed(0), rows: rows.slice(0, 45) };
      }
    }
    console.error(`${name} (${result.commit}): ${JSON.stringify({ ...result, snapshot: undefined })}`);
    if (result.snapshot) {
      console.error(`  heap snapshot diff per connection (${result.snapshot.totalBytesPerConn} B in rows ≥ 4 B):`);
      for (const r of result.snapshot.rows) console.error(`    ${String(r.perConnBytes).padStart(7)} B  ×${String(r.perConnCount).padStart(5)}  ${r.what}`);
    }
  } catch (e) {
    result.error = String(e?.message ?? e);
    console.error(`${name}: ${result.error}`);
  } finally {
    insp?.close();
    await Promise.all(gens.map((g) => g.quit()));
    await stopChild(srv.child);
    srv.cleanup?.();
    await sleep(1_000);
  }
  return result;
}

async function main() {
  benchProcessSetup();
  buildLoadgen();
  const scratch = path.join(os.tmpdir(), `herald-memory-${process.pid}`);
  mkdirSync(scratch, { recursive: true });
  const load = [loadavg()];
  console.error(`memory: ${servers.join(', ')} × ${conns}; load ${load[0]}; ${new Date().toISOString()}`);
  const results = [];
  for (const s of servers) results.push(await measure(s, scratch));
  load.push(loadavg());
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(RESULTS_DIR, { recursive: true });
  const file = path.join(RESULTS_DIR, `memory-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), load, conns, results }, null, 2));
  console.error(`load ${load.join(' → ')}; written ${file}`);
  execFileSync('true');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
