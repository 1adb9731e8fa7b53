#!/usr/bin/env node
// Soak: one Herald node (its own process, SQLite IM store, a webhook receiver) under a bounded
// mix of everything a public node sees, for --minutes (default 30):
//   - churn: connections that connect, subscribe, stay a few seconds and leave, over and over;
//   - stable subscribers of a channel published 10 times a second through /api/publish, checked
//     for gaps and duplicates (offsets must be contiguous);
//   - IM pairs: every user sends to a partner every ~2 s (with clientId) and acks what it receives;
//     at the end every recipient syncs its inbox from 0 and every message whose send was acked
//     must be there (nothing acked is lost);
//   - slow consumers: sockets that stop reading while a busy channel floods them (the node must
//     cut them, not buffer for them), reconnecting after each cut;
//   - abusive clients: deep JSON, oversized frames, garbage, command floods, `send` to the
//     webhook queue, long-polls whose sockets never read, API calls without the key.
// Server RSS (VmRSS of the server pid) is sampled every 10 s. Results: JSON in bench/results/ and
// a summary on stdout. Loopback only; every loop stops at the deadline; the server is stopped
// by its pid. Never part of `npm test`.
//
//   node bench/soak.js [--minutes 30] [--im-users 100] [--churn 60] [--stable 20] [--slow 10] [--herald-bin bin/herald.js]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { freePort, ROOT, rssKb } from './common.js';

const API_KEY = 'soak-api-key-0123456789abcdef';
const SAMPLE_MS = 10_000;

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}
const MINUTES = Number(option('minutes', 30));
const IM_USERS = Number(option('im-users', 100)) & ~1;
const CHURN = Number(option('churn', 60));
const STABLE = Number(option('stable', 20));
const SLOW = Number(option('slow', 10));
const HERALD_BIN = path.resolve(option('herald-bin', path.join(ROOT, 'bin/herald.js')));
const deadline = Date.now() + MINUTES * 60_000;
const running = () => Date.now() < deadline;

const stats = {
  churnSessions: 0, published: 0, stableDelivered: 0, stableGaps: 0, stableDuplicates: 0,
  imSent: 0, imAcked: 0, imReceived: 0, imSendErrors: 0, imLost: 0,
  stableClosed: 0, slowCuts: 0, slowSessions: 0, abusive: 0, abusiveAnswers: {}, errors: 0,
};
const count = (what) => (stats.abusiveAnswers[what] = (stats.abusiveAnswers[what] ?? 0) + 1);

// ---------------------------------------------------------------- server

/** A webhook receiver that answers 200 to everything and counts events. */
async function startWebhookSink() {
  let events = 0;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      try {
        events += JSON.parse(Buffer.concat(chunks).toString()).events.length;
      } catch {
        stats.errors++;
      }
      res.end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/webhook`, events: () => events, close: () => new Promise((r) => server.close(r)) };
}

async function startServer(port, dir, webhookUrl) {
  const config = {
    host: '127.0.0.1',
    port,
    dev: true,
    apiKey: API_KEY,
    logLevel: 'warn',
    dataDir: dir,
    namespaces: [{ name: 'soak', historySize: 100 }],
    limits: { maxMessageBytes: 65_536, maxOutboundBytes: 256 * 1024, commandsPerSecond: 200 },
    timing: { pingIntervalMs: 5_000 },
    im: { storeSync: 'normal', redeliveryTimeoutMs: 2_000 },
    backend: { webhookUrl },
  };
  const file = path.join(dir, 'herald.json');
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [HERALD_BIN, 'serve', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) return { child, stderr: () => stderr };
    } catch {
      /* not listening yet */
    }
    await sleep(100);
  }
  child.kill('SIGKILL');
  throw new Error(`server did not start: ${stderr}`);
}

/** V8 heap in use, MB, from the node's /metrics (the process metrics' nodejs_heap_size_used_bytes). */
async function heapUsedMB(base) {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `apikey ${API_KEY}` } });
  const m = /nodejs_heap_size_used_bytes(?:\{[^}]*\})? ([0-9.e+]+)/.exec(await res.text());
  return m ? Math.round(Number(m[1]) / 1024 / 102.4) / 10 : NaN;
}

// ---------------------------------------------------------------- clients

/** A native WebSocket client with request/reply and push handlers. */
function client(base, user, { onPush, onClose } = {}) {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/connection/websocket`);
  const pending = new Map();
  let next = 1;
  ws.on('error', () => undefined);
  ws.on('message', (data) => {
    let f;
    try {
      f = JSON.parse(data.toString());
    } catch {
      stats.errors++;
      return;
    }
    if (typeof f.type === 'string') onPush?.(f);
    else if (pending.has(f.id)) {
      pending.get(f.id)(f);
      pending.delete(f.id);
    }
  });
  ws.on('close', (code) => {
    for (const resolve of pending.values()) resolve({ error: { name: 'CLOSED' } });
    pending.clear();
    onClose?.(code);
  });
  const call = (cmd, params = {}) =>
    new Promise((resolve) => {
      if (ws.readyState !== WebSocket.OPEN) return resolve({ error: { name: 'CLOSED' } });
      const id = next++;
      pending.set(id, resolve);
      ws.send(JSON.stringify({ id, cmd, ...params }));
    });
  const opened = new Promise((resolve) => {
    ws.once('open', async () => resolve(await call('connect', { user })));
    ws.once('close', () => resolve({ error: { name: 'CLOSED' } }));
  });
  return { ws, call, opened, close: () => ws.close() };
}

async function churnLoop(base, i) {
  while (running()) {
    const c = client(base, `churn-${i}`);
    const r = await c.opened;
    if (!r.error) {
      stats.churnSessions++;
      await c.call('subscribe', { channel: 'soak:news' });
      await c.call('subscribe', { channel: `soak:churn-${i}` });
    }
    await sleep(2_000 + Math.random() * 8_000);
    c.close();
    await sleep(200 + Math.random() * 800);
  }
}

function stableSubscriber(base, i) {
  let last = -1;
  const c = client(base, `stable-${i}`, {
    onPush: (f) => {
      if (f.type !== 'pub' || f.channel !== 'soak:stable') return;
      stats.stableDelivered++;
      if (last >= 0 && f.offset === last) stats.stableDuplicates++;
      else if (last >= 0 && f.offset !== last + 1) stats.stableGaps++;
      last = f.offset;
    },
    onClose: () => stats.stableClosed++,
  });
  return c.opened.then(() => c.call('subscribe', { channel: 'soak:stable' })).then(() => c);
}

async function publishLoop(base, channel, everyMs, bytes) {
  const body = JSON.stringify({ channel, data: { t: 0, pad: 'x'.repeat(bytes) } });
  while (running()) {
    const res = await fetch(`${base}/api/publish`, { method: 'POST', headers: { authorization: `apikey ${API_KEY}`, 'content-type': 'application/json' }, body }).catch(
      () => undefined,
    );
    if (res?.ok) stats.published++;
    else stats.errors++;
    await res?.arrayBuffer().catch(() => undefined);
    await sleep(everyMs);
  }
}

/** IM user: sends to its partner, acks what it receives; `acked` holds the ids the server acked. */
async function imUser(base, me, partner, acked) {
  let top = 0;
  const c = client(base, me, {
    onPush: (f) => {
      const ev = f.type === 'pub' ? f.data : undefined;
      if (ev?.type === 'message' && typeof ev.seq === 'number') {
        stats.imReceived++;
        if (ev.seq > top) {
          top = ev.seq;
          void c.call('im.ack', { seq: top });
        }
      }
    },
  });
  await c.opened;
  await c.call('subscribe', { channel: `inbox:${me}` });
  let n = 0;
  while (running()) {
    await sleep(1_500 + Math.random() * 1_000);
    const clientId = `${me}-${++n}`;
    stats.imSent++;
    const r = await c.call('im.send', { to: partner, clientId, data: { text: `m${n}` } });
    if (r.result?.id) {
      stats.imAcked++;
      acked.push(r.result.id);
    } else stats.imSendErrors++;
  }
  c.close();
}

/** Every message whose send was acked must be in the recipient's inbox. */
async function verifyInbox(base, user, ids) {
  const c = client(base, user);
  await c.opened;
  const seen = new Set();
  let after = 0;
  for (;;) {
    const r = await c.call('im.sync', { after, limit: 500 });
    if (!r.result) throw new Error(`im.sync failed for ${user}: ${JSON.stringify(r.error)}`);
    for (const ev of r.result.messages) seen.add(ev.message.id);
    if (!r.result.more || r.result.messages.length === 0) break;
    after = r.result.messages.at(-1).seq;
  }
  c.close();
  return ids.filter((id) => !seen.has(id)).length;
}

async function slowLoop(base, i) {
  while (running()) {
    stats.slowSessions++;
    const closed = new Promise((resolve) => {
      const c = client(base, `slow-${i}`, { onClose: resolve });
      void c.opened.then(async () => {
        await c.call('subscribe', { channel: 'soak:flood' });
        c.ws._socket?.pause(); // stop reading: the node must cut us, not buffer for us
      });
      setTimeout(() => c.ws.terminate(), Math.max(1_000, Math.min(60_000, deadline - Date.now()))).unref();
    });
    count(`slow-close:${await closed}`);
    stats.slowCuts++;
    await sleep(1_000);
  }
}

/** One round of abuse: each attempt must be answered (an error, a close, a 4xx), never crash the node. */
async function abuseRound(base, port) {
  const deep = `{"id":1,"cmd":"send","data":${'['.repeat(20_000)}${']'.repeat(20_000)}}`;
  const attempts = [
    async () => {
      const c = client(base, 'abuser');
      await c.opened;
      const r = await c.call('publish', { channel: 'soak:x', data: JSON.parse('['.repeat(60) + ']'.repeat(60)) });
      c.ws.send(deep);
      c.ws.send(Buffer.alloc(70_000, 0x61)); // over maxMessageBytes
      await sleep(100);
      c.ws.terminate();
      count(r.error?.name ?? 'ok');
    },
    async () => {
      const c = client(base, 'garbage');
      await c.opened;
      c.ws.send('\u0000\u0001not json{{{');
      await new Promise((r) => c.ws.once('close', r).once('error', r));
      count('garbage-closed');
    },
    async () => {
      const c = client(base, 'flooder');
      await c.opened;
      for (let i = 0; i < 400 && c.ws.readyState === WebSocket.OPEN; i++) c.ws.send('{"cmd":"ping"}');
      await new Promise((r) => setTimeout(r, 500));
      count(c.ws.readyState === WebSocket.OPEN ? 'flood-open' : 'flood-closed');
      c.ws.terminate();
    },
    async () => {
      const c = client(base, 'webhook-spammer');
      await c.opened;
      const r = await c.call('send', { data: { pad: 'y'.repeat(30_000) } });
      count(`send:${r.error?.name ?? 'ok'}`);
      c.ws.terminate();
    },
    async () => {
      // A long-poll whose socket never reads its answer.
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => undefined);
      s.write(`GET /connection/poll?user=lp&channels=soak:flood,soak:stable,soak:news&last=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
      s.pause();
      setTimeout(() => s.destroy(), 20_000).unref();
      count('stuck-poll');
    },
    async () => {
      const res = await fetch(`${base}/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"channel":"soak:x","data":1}' });
      count(`api-nokey:${res.status}`);
      await res.arrayBuffer();
    },
    async () => {
      const res = await fetch(`${base}/connection/command?user=deep`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: deep });
      count(`http-deep:${res.status}`);
      await res.arrayBuffer();
    },
  ];
  for (const a of attempts) {
    stats.abusive++;
    await a().catch(() => count('client-error'));
  }
}

// ---------------------------------------------------------------- run

async function main() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-soak-'));
  const sink = await startWebhookSink();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = await startServer(port, dir, sink.url);
  const pid = server.child.pid;
  const samples = [{ t: 0, rssKb: rssKb(pid) }];
  const t0 = Date.now();
  const sampler = setInterval(async () => {
    try {
      samples.push({ t: Math.round((Date.now() - t0) / 1000), rssKb: rssKb(pid), heapMB: await heapUsedMB(base).catch(() => NaN) });
      const s = samples.at(-1);
      process.stdout.write(`t=${s.t}s rss=${(s.rssKb / 1024).toFixed(1)} MB heap=${s.heapMB} MB im=${stats.imAcked} pub=${stats.published} churn=${stats.churnSessions} slow=${stats.slowCuts}\n`);
    } catch {
      stats.errors++;
    }
  }, SAMPLE_MS);
  let serverDied = false;
  server.child.once('exit', () => (serverDied = true));

  const stable = await Promise.all(Array.from({ length: STABLE }, (_, i) => stableSubscriber(base, i)));
  const acked = new Map();
  const loops = [
    publishLoop(base, 'soak:stable', 100, 64),
    publishLoop(base, 'soak:news', 500, 256),
    publishLoop(base, 'soak:flood', 5, 8_000),
    ...Array.from({ length: CHURN }, (_, i) => churnLoop(base, i)),
    ...Array.from({ length: SLOW }, (_, i) => slowLoop(base, i)),
    ...Array.from({ length: IM_USERS }, (_, i) => {
      const me = `im-${i}`;
      const partner = `im-${i ^ 1}`;
      if (!acked.has(partner)) acked.set(partner, []);
      return imUser(base, me, partner, acked.get(partner));
    }),
    (async () => {
      while (running()) {
        await abuseRound(base, port);
        await sleep(1_000);
      }
    })(),
  ];
  await Promise.all(loops);
  await sleep(3_000); // let in-flight deliveries and acks settle
  for (const c of stable) c.close();
  for (const [user, ids] of acked) stats.imLost += await verifyInbox(base, user, ids);
  clearInterval(sampler);
  samples.push({ t: Math.round((Date.now() - t0) / 1000), rssKb: rssKb(pid) });
  const diedDuringRun = serverDied;
  server.child.kill('SIGTERM');
  await new Promise((r) => server.child.once('exit', r));
  await sink.close();
  rmSync(dir, { recursive: true, force: true });

  const warm = samples.filter((s) => s.t >= 120);
  const rss = (warm.length ? warm : samples).map((s) => s.rssKb / 1024);
  const heap = (warm.length ? warm : samples).map((s) => s.heapMB).filter(Number.isFinite);
  const summary = {
    minutes: MINUTES,
    node: process.version,
    cpus: os.cpus().length,
    loadavg: os.loadavg(),
    serverDied: diedDuringRun,
    heapUsedMB: { afterWarmupMin: Math.min(...heap), afterWarmupMax: Math.max(...heap) },
    rssMB: { start: samples[0].rssKb / 1024, afterWarmupMin: Math.min(...rss), afterWarmupMax: Math.max(...rss), end: samples.at(-1).rssKb / 1024 },
    webhookEvents: sink.events(),
    ...stats,
  };
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  const out = path.join(ROOT, `bench/results/soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, JSON.stringify({ summary, samples }, null, 2));
  console.log(JSON.stringify(summary, null, 2));
  console.log(`results: ${out}`);
  if (diedDuringRun || stats.imLost > 0 || stats.stableGaps > 0 || stats.stableDuplicates > 0) process.exitCode = 1;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
