#!/usr/bin/env node
// Idle cost of held IM users: CPU of one Herald process while N native WebSocket users sit
// connected doing nothing (each connected with its user name, subscribed to its inbox and
// presence set online), and RSS per user. Several builds can be measured in one run
// (A/B), one after the other on the same machine.
//
//   node bench/idle.js [--users 10000[,20000…]] [--hold 60] [--settle 5] [--ping <ms>] [--herald-bin path/to/bin/herald.js ...] [--prof <dir>]
//
// --ping sets timing.pingIntervalMs (default: Herald's own, 25 s), so the cost of heartbeats
// can be told from the rest. Several user counts (--users 1,10000,18000) measure each build at
// each size, so the cost per idle user (the slope) can be told from the node's own (the
// intercept). --settle: seconds between the last login and the window (V8's collections after
// the logins' garbage fall in it). Server pinned to core 0, the loadgen to core 1. Never part
// of npm test.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, benchProcessSetup, buildLoadgen, cpuSecs, freePort, heraldEnv, loadavg, openConnections, rssKb, spawnAt, stopChild, waitPort } from './common.js';

const opts = { users: [10_000], hold: 60, settle: 5, ping: undefined, bins: [], prof: undefined };
for (let i = 2; i < process.argv.length; i += 2) {
  const [k, v] = [process.argv[i], process.argv[i + 1]];
  if (k === '--users') opts.users = v.split(',').map(Number);
  else if (k === '--hold') opts.hold = Number(v);
  else if (k === '--settle') opts.settle = Number(v);
  else if (k === '--ping') opts.ping = Number(v);
  else if (k === '--herald-bin') opts.bins.push(path.resolve(v));
  else if (k === '--prof') opts.prof = path.resolve(v);
  else throw new Error(`unknown option ${k}`);
}
if (!opts.bins.length) opts.bins.push(path.join(ROOT, 'bin/herald.js'));

benchProcessSetup();
buildLoadgen();

/** One build at one size: start it, hold the users, measure, stop. */
async function measure(bin, users) {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-idle-'));
  const args = ['serve', '--dev', '--port', String(port), '--data-dir', dir];
  // The loadgen logs every user in from a few addresses: lift the per-address caps (builds
  // older than those caps ignore the variables).
  const env = { ...heraldEnv('warn'), HERALD_LIMITS_MAX_CONNECTIONS_PER_IP: '0', HERALD_LIMITS_CONNECTIONS_PER_IP_PER_SECOND: '0' };
  if (opts.ping) args.push('--timing.ping-interval-ms', String(opts.ping));
  const nodeArgs = opts.prof ? ['--cpu-prof', '--cpu-prof-dir', opts.prof] : [];
  const srv = spawnAt('0', process.execPath, [...nodeArgs, bin, ...args], { cwd: path.dirname(path.dirname(bin)), env, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    await waitPort(port);
    const spec = {
      path: '/connection/websocket',
      send: ['{"id":1,"cmd":"connect","user":"u%d"}', '{"id":2,"cmd":"subscribe","channel":"inbox:u%d"}', '{"id":3,"cmd":"im.presence.set","state":"online"}'],
    };
    const rss0 = rssKb(srv.pid);
    const open = await openConnections({ port, spec, conns: users, concurrency: 256, tag: 'idle', cpu: '1' });
    await sleep(opts.settle * 1000);
    const cpu0 = cpuSecs(srv.pid);
    await sleep(opts.hold * 1000);
    const cpu1 = cpuSecs(srv.pid);
    const result = {
      bin,
      users,
      ready: open.ready,
      loginSecs: open.secs,
      idleCpuPct: +(((cpu1 - cpu0) / opts.hold) * 100).toFixed(2),
      kbPerUser: +((rssKb(srv.pid) - rss0) / open.ready).toFixed(2),
    };
    await Promise.all(open.gens.map((g) => g.quit()));
    return result;
  } finally {
    await stopChild(srv, 'SIGINT');
    rmSync(dir, { recursive: true, force: true });
  }
}

console.error(`idle: ${opts.users.join(', ')} users held ${opts.hold} s after ${opts.settle} s, ping ${opts.ping ?? 'default'}; load ${loadavg()}`);
for (const users of opts.users) {
  for (const bin of opts.bins) {
    const r = await measure(bin, users);
    console.log(JSON.stringify({ ...r, load: loadavg() }));
  }
}
console.error(`load after: ${loadavg()}`);
