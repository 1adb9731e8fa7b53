#!/usr/bin/env node
// The classic IM load test of issue 17, driven by Debian's tsung 1.7 against Herald and ejabberd
// in the same run: every user connects, logs in (SASL PLAIN, stream restart, bind, session),
// sends its initial presence, sends one chat message to an online user, and holds the
// connection; then all close. Measured per server: tsung errors, users held, login time
// (tsung's `login` transaction: TCP connect to session established) mean and max, memory per
// held user (RSS above the idle server's), and the CPU the server spends while the users sit
// idle (a window after every user is in, before the first one leaves).
//
//   node bench/im-tsung.js [--users 10000] [--rate 500] [--window 40] [--settle 10]
//       [--herald-bin bin/herald.js ...] [--no-ejabberd] [--ws] [--no-xmpp] [--prof <dir>]
//
// Servers: each --herald-bin (default bin/herald.js; `npm run build` first) runs in development
// mode (any password) with its default heartbeat; ejabberd (Debian 23.01) runs as a private
// instance on a free loopback port with its own config, spool and log directory, with
// anonymous login over SASL PLAIN (`login_anon`: any user name and password, as Herald's
// development mode; no credential store on either side). The
// servers run pinned to core 0 and tsung to core 1, one server after the other. --ws adds the
// native protocol over WebSocket (tsung's websocket type) against each Herald build; --no-xmpp
// leaves out the XMPP scenario against Herald; --prof writes a V8 CPU profile of each Herald run.
// Every process started is stopped by its pid. Never part of `npm test`.
import { spawn } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { benchProcessSetup, children, cpuSecs, freePort, loadavg, machineInfo, ROOT, rssKb, spawnAt, stopChild, waitExit, waitPort } from './common.js';

const opts = { users: 10_000, rate: 500, window: 40, settle: 10, bins: [], ejabberd: true, ws: false, xmpp: true, prof: undefined };
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i];
  const v = process.argv[i + 1];
  if (k === '--no-ejabberd') opts.ejabberd = false;
  else if (k === '--ws') opts.ws = true;
  else if (k === '--no-xmpp') opts.xmpp = false;
  else if (k === '--prof') (opts.prof = path.resolve(v), i++);
  else if (k === '--herald-bin') (opts.bins.push(path.resolve(v)), i++);
  else if (['--users', '--rate', '--window', '--settle'].includes(k)) (opts[k.slice(2)] = Number(v), i++);
  else throw new Error(`unknown option ${k}`);
}
if (!opts.bins.length) opts.bins.push(path.join(ROOT, 'bin/herald.js'));
const RAMP_S = Math.ceil(opts.users / opts.rate);
/** Longest wait for every user to be logged in after the ramp, s. */
const LOGIN_SLACK_S = 60;
/** Each user holds this long after its message: past the ramp, the slack, the settle time and the window. */
const HOLD_S = RAMP_S + LOGIN_SLACK_S + opts.settle + opts.window + 10;
const EJABBERD_LIB = '/usr/lib/x86_64-linux-gnu';

/** tsung's XMPP scenario (TCP, SASL PLAIN) against 127.0.0.1:port. */
function xmppScenario(port) {
  return `<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="warning" version="1.0" dumptraffic="false">
  <clients><client host="localhost" use_controller_vm="true" maxusers="${opts.users + 100}"/></clients>
  <servers><server host="127.0.0.1" port="${port}" type="tcp"/></servers>
  <load>
    <arrivalphase phase="1" duration="${RAMP_S * 2 + 5}" unit="second">
      <users maxnumber="${opts.users}" arrivalrate="${opts.rate}" unit="second"/>
    </arrivalphase>
  </load>
  <options>
    <option type="ts_jabber" name="global_number" value="${opts.users}"/>
    <option type="ts_jabber" name="userid_max" value="${opts.users}"/>
    <option type="ts_jabber" name="domain" value="localhost"/>
    <option type="ts_jabber" name="username" value="user"/>
    <option type="ts_jabber" name="passwd" value="pass"/>
  </options>
  <sessions>
    <session probability="100" name="im-hold" type="ts_jabber" bidi="true">
      <transaction name="login">
        <request><jabber type="connect" ack="local"/></request>
        <request><jabber type="auth_sasl" ack="local"/></request>
        <request><jabber type="connect" ack="local"/></request>
        <request><jabber type="auth_sasl_bind" ack="local"/></request>
        <request><jabber type="auth_sasl_session" ack="local"/></request>
      </transaction>
      <request><jabber type="presence:initial" ack="no_ack"/></request>
      <thinktime value="1" random="false"/>
      <transaction name="message">
        <request><jabber type="chat" ack="no_ack" size="32" destination="online"/></request>
      </transaction>
      <thinktime value="${HOLD_S}" random="false"/>
      <request><jabber type="close" ack="no_ack"/></request>
    </session>
  </sessions>
</tsung>
`;
}

/**
 * tsung's websocket scenario against Herald's native protocol: connect as tsung's user N,
 * subscribe to the inbox, set presence, send one message to a random user, hold.
 */
function wsScenario(port) {
  const send = (id, body) => `<request subst="true"><websocket type="message">${body.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;')}</websocket></request>`;
  return `<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="warning" version="1.0">
  <clients><client host="localhost" use_controller_vm="true" maxusers="${opts.users + 100}"/></clients>
  <servers><server host="127.0.0.1" port="${port}" type="tcp"/></servers>
  <load>
    <arrivalphase phase="1" duration="${RAMP_S * 2 + 5}" unit="second">
      <users maxnumber="${opts.users}" arrivalrate="${opts.rate}" unit="second"/>
    </arrivalphase>
  </load>
  <sessions>
    <session probability="100" name="im-hold-ws" type="ts_websocket">
      <setdynvars sourcetype="random_number" start="1" end="${opts.users}"><var name="peer"/></setdynvars>
      <transaction name="login">
        <request><websocket type="connect" path="/connection/websocket" origin="http://127.0.0.1"/></request>
        ${send(1, '{"id":1,"cmd":"connect","user":"user%%_tsung_userid%%"}')}
        ${send(2, '{"id":2,"cmd":"subscribe","channel":"inbox:user%%_tsung_userid%%"}')}
      </transaction>
      ${send(3, '{"id":3,"cmd":"im.presence.set","state":"online"}')}
      <thinktime value="1" random="false"/>
      <transaction name="message">
        ${send(4, '{"id":4,"cmd":"im.send","to":"user%%_peer%%","text":"hello from a held user"}')}
      </transaction>
      <thinktime value="${HOLD_S}" random="false"/>
      <request><websocket type="close"/></request>
    </session>
  </sessions>
</tsung>
`;
}

/** Established TCP connections whose local port is `port` (the server side of each user). */
function established(port) {
  try {
    return Number(execFileSync('sh', ['-c', `ss -Htn state established '( sport = :${port} )' | wc -l`], { encoding: 'utf8' }).trim());
  } catch {
    return 0;
  }
}

/**
 * tsung's figures from the last run under logDir: counters (name → total), and for each sample
 * (transactions, connect) its count, mean and max over the whole run, ms.
 */
function tsungStats(logDir) {
  const run = readdirSync(logDir).find((d) => /^\d{8}-\d{4}/.test(d));
  if (!run) throw new Error(`no tsung run directory in ${logDir}`);
  const counters = {};
  const samples = {};
  for (const line of readFileSync(path.join(logDir, run, 'tsung.log'), 'utf8').split('\n')) {
    // Counters: "stats: name this-interval total"; samples: "stats: name count mean stddev max min meanfull countfull".
    const f = line.trim().split(/\s+/);
    if (f[0] !== 'stats:' || f.length < 4) continue;
    if (f.length === 4) counters[f[1]] = Number(f[3]);
    else {
      const s = (samples[f[1]] ??= { count: 0, sum: 0, max: 0 });
      const count = Number(f[2]);
      s.count += count;
      s.sum += count * Number(f[3]);
      if (count > 0) s.max = Math.max(s.max, Number(f[5]));
    }
  }
  const out = {};
  for (const [k, s] of Object.entries(samples)) out[k] = { count: s.count, meanMs: s.count ? +(s.sum / s.count).toFixed(1) : 0, maxMs: +s.max.toFixed(1) };
  return { counters, samples: out };
}

/** Start one Herald build; resolves with its pids, port and a stop function. */
async function startHerald(bin, dir) {
  const [port, xmppPort] = [await freePort(), await freePort()];
  const config = path.join(dir, 'herald.json');
  writeFileSync(config, JSON.stringify({ dev: true, host: '127.0.0.1', port, dataDir: path.join(dir, 'data'), logLevel: 'warn', xmpp: { tcpPort: xmppPort } }));
  // tsung logs every user in from one address: lift the per-address caps.
  const env = { ...process.env, HERALD_LIMITS_MAX_CONNECTIONS_PER_IP: '0', HERALD_LIMITS_CONNECTIONS_PER_IP_PER_SECOND: '0' };
  const prof = opts.prof ? ['--cpu-prof', '--cpu-prof-dir', opts.prof] : [];
  const child = spawnAt('0', process.execPath, [...prof, bin, 'serve', '--config', config], { cwd: path.dirname(path.dirname(bin)), env, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitPort(xmppPort);
  await waitPort(port);
  /** Messages Herald stored (its /metrics; development mode trusts loopback). */
  const stored = async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return Number(/^herald_im_messages_stored_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? NaN);
  };
  return { pids: [child.pid], port, xmppPort, stored, stop: () => stopChild(child, 'SIGINT') };
}

/** Start a private ejabberd (its own config, spool and logs under dir); resolves with its pid and port. */
async function startEjabberd(dir) {
  const port = await freePort();
  for (const d of ['spool', 'logs']) mkdirSync(path.join(dir, d));
  const config = path.join(dir, 'ejabberd.yml');
  writeFileSync(
    config,
    `hosts: [localhost]
loglevel: warning
log_rotate_count: 0
listen:
  - port: ${port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: c2s_shaper
    access: c2s
    starttls_required: false
auth_method: [anonymous]
anonymous_protocol: login_anon
allow_multiple_connections: true
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
shaper:
  normal:
    rate: 3000
    burst_size: 20000
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 100
  c2s_shaper: normal
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_offline: {}
  mod_mam:
    assume_mam_usage: true
    default: always
  mod_carboncopy: {}
  mod_stream_mgmt: {}
`,
  );
  const env = {
    ...process.env,
    ERL_LIBS: EJABBERD_LIB,
    EJABBERD_CONFIG_PATH: config,
    EJABBERD_LOG_PATH: path.join(dir, 'logs', 'ejabberd.log'),
    ERL_CRASH_DUMP: path.join(dir, 'logs', 'erl_crash.dump'),
    ERL_MAX_PORTS: '65536',
    HOME: dir,
  };
  // As ejabberdctl's `foreground`, without a distributed node name (no epmd needed).
  const child = spawnAt('0', '/usr/bin/erl', ['+K', 'true', '+P', '1000000', '-noinput', '-mnesia', 'dir', `"${path.join(dir, 'spool')}"`, '-s', 'ejabberd'], {
    cwd: dir,
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitPort(port, 60_000);
  return { pids: [child.pid], port, xmppPort: port, stop: () => stopChild(child, 'SIGTERM') };
}

/** Process groups of tsung runs not yet finished, stopped whenever this script exits. */
const tsungGroups = new Set();
function killGroup(pid) {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
process.on('exit', () => tsungGroups.forEach(killGroup));

const cpuOf = (pids) => pids.reduce((s, p) => s + cpuSecs(p), 0);
const rssOf = (pids) => pids.reduce((s, p) => s + rssKb(p), 0);

/** Run one scenario against one started server and measure. */
async function measure(name, server, scenario, dir) {
  await sleep(2_000);
  const rss0 = rssOf(server.pids);
  const cpuStart = cpuOf(server.pids);
  const conf = path.join(dir, 'tsung.xml');
  writeFileSync(conf, scenario);
  const logDir = path.join(dir, 'tsung-log');
  const started = Date.now();
  // In its own process group: the tsung script leaves its Erlang VM behind when only it is stopped.
  const tsung = spawnAt('1', 'tsung', ['-f', conf, '-l', logDir, '-n', 'start'], { cwd: dir, env: { ...process.env, HOME: dir }, stdio: ['ignore', 'ignore', 'inherit'], detached: true });
  tsungGroups.add(tsung.pid);
  const port = scenario.includes('ts_websocket') ? server.port : server.xmppPort;
  // Wait for every user to be in (or the slack to run out), then let the logins' garbage settle.
  let held = 0;
  const loginDeadline = started + (RAMP_S + LOGIN_SLACK_S) * 1000;
  while (Date.now() < loginDeadline && (held = established(port)) < opts.users) await sleep(500);
  const allInSecs = (Date.now() - started) / 1000;
  const loginCpu = cpuOf(server.pids) - cpuStart;
  await sleep(opts.settle * 1000);
  const cpu0 = cpuOf(server.pids);
  const t0 = Date.now();
  await sleep(opts.window * 1000);
  const cpu1 = cpuOf(server.pids);
  const windowSecs = (Date.now() - t0) / 1000;
  const heldAtEnd = established(port);
  const rss1 = rssOf(server.pids);
  // The first user leaves HOLD_S after its message: the window must have ended before.
  const windowClean = Date.now() < started + HOLD_S * 1000;
  const exited = await waitExit(tsung, (HOLD_S + RAMP_S * 2 + 120) * 1000);
  if (!exited) killGroup(tsung.pid);
  tsungGroups.delete(tsung.pid);
  const { counters, samples } = tsungStats(logDir);
  const stored = server.stored ? await server.stored() : undefined;
  const errors = Object.fromEntries(Object.entries(counters).filter(([k, v]) => k.startsWith('error') && v > 0));
  return {
    server: name,
    users: opts.users,
    rate: opts.rate,
    held: Math.min(held, heldAtEnd),
    allInSecs: +allInSecs.toFixed(1),
    tsungFinished: counters.finish_users_count ?? 0,
    errors,
    messagesStored: stored,
    login: samples.tr_login,
    connect: samples.connect,
    kbPerUser: +((rss1 - rss0) / Math.max(1, heldAtEnd)).toFixed(1),
    rssMb: +(rss1 / 1024).toFixed(0),
    idleCpuPct: +(((cpu1 - cpu0) / windowSecs) * 100).toFixed(2),
    loginCpuSecsPer1k: +((loginCpu / Math.max(1, held)) * 1000).toFixed(2),
    windowClean,
    load: loadavg(),
  };
}

/** epmd daemons running now (tsung starts one and leaves it behind). */
function epmds() {
  try {
    return new Set(execFileSync('pgrep', ['-x', 'epmd'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number));
  } catch {
    return new Set();
  }
}

async function run(name, start, scenarioOf) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-im-tsung-'));
  const server = await start(dir);
  try {
    const r = await measure(name, server, scenarioOf(server), dir);
    console.log(JSON.stringify(r));
    return r;
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

benchProcessSetup();
const epmdBefore = epmds();
console.error(`im-tsung: ${opts.users} users at ${opts.rate}/s, hold ${HOLD_S} s, idle window ${opts.window} s; load ${loadavg()}`);
console.error(JSON.stringify(machineInfo()));
try {
  if (opts.ejabberd) await run('ejabberd 23.01 (XMPP/TCP)', startEjabberd, (s) => xmppScenario(s.xmppPort));
  for (const bin of opts.bins) {
    const label = path.relative(process.cwd(), bin) || bin;
    if (opts.xmpp) await run(`herald ${label} (XMPP/TCP)`, (dir) => startHerald(bin, dir), (s) => xmppScenario(s.xmppPort));
    if (opts.ws) await run(`herald ${label} (native/WebSocket)`, (dir) => startHerald(bin, dir), (s) => wsScenario(s.port));
  }
} finally {
  for (const pid of epmds()) if (!epmdBefore.has(pid)) process.kill(pid, 'SIGTERM');
  for (const c of children) c.kill('SIGKILL');
}
console.error(`load after: ${loadavg()}`);
