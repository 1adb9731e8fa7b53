#!/usr/bin/env node
// Memory per TLS connection, same run, same client: Herald terminating TLS itself (tls.certFile /
// tls.keyFile) against nginx terminating TLS in front of a plain Herald (proxy_pass, WebSocket
// upgrade), with plain Herald as the baseline. Each mode: a fresh server, 500 warm-up connections,
// then --conns more native WebSocket sessions (connect + 2 subscriptions), held idle. Reported per
// added connection: server RSS (Herald; Herald + nginx worker for the proxy), and kernel TCP socket
// memory (/proc/net/sockstat, both ends on loopback) separately. Client: Node `ws` in its own
// process. Loopback only; every process stopped by pid. Never part of `npm test`.
//
//   node bench/tls.js [--conns 5000] [--modes plain,herald-tls,nginx-tls] [--herald-bin bin/herald.js]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { childPids, freePort, ROOT, rssKb } from './common.js';

const SELF = fileURLToPath(import.meta.url);
const WARMUP = 500;
const SETTLE_MS = 3_000;

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

// ---------------------------------------------------------------- client mode

/** `--client URL N`: open N sessions (connect + 2 subscriptions), print "ready", hold until stdin ends. */
async function clientMode() {
  const url = option('client');
  const n = Number(option('n'));
  const prefix = option('prefix', 'c');
  let open = 0;
  let failed = 0;
  const sockets = [];
  const one = (i) =>
    new Promise((resolve) => {
      const ws = new WebSocket(url, { rejectUnauthorized: false, perMessageDeflate: false });
      sockets.push(ws);
      let replies = 0;
      ws.on('error', () => undefined);
      ws.once('open', () => {
        ws.send(JSON.stringify({ id: 1, cmd: 'connect', user: `${prefix}${i}` }));
        ws.send(JSON.stringify({ id: 2, cmd: 'subscribe', channel: 'bench' }));
        ws.send(JSON.stringify({ id: 3, cmd: 'subscribe', channel: `u-${prefix}${i}` }));
      });
      ws.on('message', (data) => {
        const f = JSON.parse(data.toString());
        if (f.error) {
          failed++;
          resolve();
        } else if (f.id && ++replies === 3) {
          open++;
          resolve();
        }
      });
      ws.once('close', () => resolve());
    });
  const CONCURRENCY = 100;
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < n) await one(next++);
    }),
  );
  process.stdout.write(JSON.stringify({ ready: true, open, failed }) + '\n');
  process.stdin.resume();
  process.stdin.once('end', () => {
    for (const ws of sockets) ws.terminate();
    process.exit(0);
  });
}

// ---------------------------------------------------------------- bench mode

const children = new Set();
function start(cmd, args, options = {}) {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Kernel TCP socket memory, KB (sockstat counts pages). */
const tcpMemKb = () => Number(/TCP: .* mem (\d+)/.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1]) * 4;

/** Resolve once `url` answers below 500 (self-signed certificates accepted: the bench made them). */
async function waitHttp(url) {
  const get = () =>
    new Promise((resolve, reject) => {
      const mod = url.startsWith('https:') ? https : http;
      const req = mod.get(url, { rejectUnauthorized: false }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.once('error', reject);
    });
  for (let i = 0; i < 300; i++) {
    if ((await get().catch(() => 500)) < 500) return;
    await sleep(100);
  }
  throw new Error(`nothing answers ${url}`);
}

async function startHerald(dir, port, tls) {
  const config = { host: '127.0.0.1', port, dev: true, logLevel: 'warn', dataDir: dir, limits: { maxConnections: 50_000 }, ...(tls ? { tls } : {}) };
  const file = path.join(dir, `herald-${port}.json`);
  writeFileSync(file, JSON.stringify(config));
  const child = start(process.execPath, [path.resolve(option('herald-bin', path.join(ROOT, 'bin/herald.js'))), 'serve', '--config', file]);
  child.stdout.resume();
  child.stderr.resume();
  return child;
}

function startNginx(dir, port, upstreamPort, cert, key) {
  const prefix = path.join(dir, `nginx-${port}`);
  mkdirSync(path.join(prefix, 'logs'), { recursive: true });
  mkdirSync(path.join(prefix, 'tmp'), { recursive: true });
  const conf = path.join(prefix, 'nginx.conf');
  writeFileSync(
    conf,
    `worker_processes 1;
worker_rlimit_nofile 20000;
error_log ${prefix}/logs/error.log warn;
pid ${prefix}/nginx.pid;
daemon off;
events { worker_connections 19000; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body; proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi; uwsgi_temp_path ${prefix}/tmp/uwsgi; scgi_temp_path ${prefix}/tmp/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${cert}; ssl_certificate_key ${key};
    location / {
      proxy_pass http://127.0.0.1:${upstreamPort};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $host;
      proxy_read_timeout 1h;
    }
  }
}
`,
  );
  const child = start('nginx', ['-p', prefix, '-c', conf]);
  child.stdout.resume();
  child.stderr.resume();
  return { child, workerPids: () => childPids(child.pid) };
}

/** Open `n` sessions in a client process; resolves with the process once they are held. */
async function openClients(url, n, prefix) {
  const child = start(process.execPath, [SELF, '--client', url, '--n', String(n), '--prefix', prefix]);
  child.stderr.resume();
  const line = await new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`client exited ${code}`)));
  });
  const r = JSON.parse(line);
  if (r.open !== n) throw new Error(`only ${r.open} of ${n} sessions opened (${r.failed} failed)`);
  return child;
}

async function stop(child) {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.stdin?.end();
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(5_000)]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

async function measure(mode, conns, dir, cert, key) {
  const heraldPort = await freePort();
  const herald = await startHerald(dir, heraldPort, mode === 'herald-tls' ? { certFile: cert, keyFile: key } : undefined);
  let nginx;
  let url;
  if (mode === 'nginx-tls') {
    const port = await freePort();
    nginx = startNginx(dir, port, heraldPort, cert, key);
    await waitHttp(`http://127.0.0.1:${heraldPort}/health`);
    await waitHttp(`https://127.0.0.1:${port}/health`);
    url = `wss://127.0.0.1:${port}/connection/websocket`;
  } else if (mode === 'herald-tls') {
    await waitHttp(`https://127.0.0.1:${heraldPort}/health`);
    url = `wss://127.0.0.1:${heraldPort}/connection/websocket`;
  } else {
    await waitHttp(`http://127.0.0.1:${heraldPort}/health`);
    url = `ws://127.0.0.1:${heraldPort}/connection/websocket`;
  }
  const serverKb = () => rssKb(herald.pid) + (nginx ? nginx.workerPids().reduce((s, p) => s + rssKb(p), 0) : 0);
  const warm = await openClients(url, WARMUP, 'w');
  await sleep(SETTLE_MS);
  const before = { server: serverKb(), herald: rssKb(herald.pid), tcp: tcpMemKb() };
  const t0 = Date.now();
  const load = await openClients(url, conns, 'c');
  const acceptSecs = (Date.now() - t0) / 1000;
  await sleep(SETTLE_MS);
  const after = { server: serverKb(), herald: rssKb(herald.pid), tcp: tcpMemKb() };
  await stop(load);
  await stop(warm);
  await stop(herald);
  if (nginx) await stop(nginx.child);
  const per = (a, b) => Math.round(((a - b) * 1024) / conns / 10.24) / 100;
  return {
    mode,
    conns,
    acceptSecs,
    serverKbPerConn: per(after.server, before.server),
    heraldKbPerConn: per(after.herald, before.herald),
    proxyKbPerConn: nginx ? per(after.server - after.herald, before.server - before.herald) : 0,
    kernelTcpKbPerConn: per(after.tcp, before.tcp),
  };
}

async function benchMode() {
  const conns = Number(option('conns', 5000));
  const modes = option('modes', 'plain,herald-tls,nginx-tls').split(',');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-tls-bench-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  const results = [];
  try {
    for (const mode of modes) {
      const r = await measure(mode, conns, dir, cert, key);
      results.push(r);
      console.log(JSON.stringify(r));
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  const base = results.find((r) => r.mode === 'plain');
  console.log(`\nmachine: ${os.cpus().length} cpus, node ${process.version}, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  console.log('| mode | connections | server KB/conn (Herald + proxy) | of which proxy | kernel TCP KB/conn | accept s | vs plain |');
  console.log('|---|---|---|---|---|---|---|');
  for (const r of results) {
    const ratio = base ? (r.serverKbPerConn / base.serverKbPerConn).toFixed(2) : '';
    console.log(`| ${r.mode} | ${r.conns} | ${r.serverKbPerConn} | ${r.proxyKbPerConn} | ${r.kernelTcpKbPerConn} | ${r.acceptSecs.toFixed(2)} | ${ratio} |`);
  }
  mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(path.join(ROOT, `bench/results/tls-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(results, null, 2));
}

if (option('client', undefined) !== undefined) await clientMode();
else await benchMode();
