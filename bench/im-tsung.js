#!/usr/bin/env node
// The classic IM load test of issue 17, driven by Debian's tsung 1.7 against Herald and ejabberd
// in the same run: every user connects, logs in (SASL PLAIN, stream restart, bind, session),
// sends its initial presence, sends one chat message to an online user, and holds the
// connection; tsung is stopped once the measurement is over. Measured per server: tsung errors, users held, login time
// (tsung's `login` transaction: TCP connect to session established) mean and max, memory per
// held user (RSS above the idle server's), and the CPU the server spends while the users sit
// idle (a window after every user is in, before the first one leaves).
//
//   node bench/im-tsung.js [--users 10000] [--rate 500] [--window 40] [--settle 10]
//       [--herald-bin bin/herald.js ...] [--no-ejabberd] [--ws] [--no-xmpp] [--prof <dir>]
//       [--workers N] [--tsung K] [--driver tsung|node] [--keep] [--progress] [--sched rr|none]
//       [--ejabberd-nodes N] [--redis]
//
// --keep leaves each run's directory (tsung's configs and logs, the server's config and data)
// in the temporary directory and names it; --progress prints every 10 s of the ramp the users
// established per server process and each tsung instance's users launched / connected.
// --sched sets node:cluster's scheduling policy of Herald's workers (NODE_CLUSTER_SCHED_POLICY:
// `rr`, Node's default, the primary accepts and hands each connection to a worker; `none`, the
// workers accept from the shared socket themselves).
//
// Each result also gives what the kernel did during the run (ramp to the window's end): packets
// the loopback device dropped because its per-CPU backlog (net.core.netdev_max_backlog) was
// full, handshakes whose last ACK found a listen queue full (the server accepts them only if a
// retransmission finds room), TCP keepalive probes sent, and connections the kernel aborted on a
// timeout (a keepalive or retransmission that went unanswered: the server's end is gone, the
// client's still open).
//
// --driver node drives the XMPP scenario with bench/xmpp-login-driver.js instead of tsung (the
// same steps; every login timed, so the login's p50 / p90 / p99 are reported beside mean and
// max, which tsung 1.7 does not give). The WebSocket scenario is always tsung's.
//
// Beyond one process's 20,000 open files: --workers N runs each Herald build as N workers on
// one port with Redis (127.0.0.1:6379, a run prefix deleted afterwards), and --tsung K splits
// the users over K tsung instances run at once (each its own Erlang VM, user names and loopback
// source address 127.0.0.2, 127.0.0.3, …; the arrival rate is shared). Redis's CPU over the
// idle window is reported beside the server's (it serves other clients too on a shared host).
// --redis gives one process (no --workers) the same Redis engines: what Redis costs a login
// apart from the workers sharing one SQLite file.
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
import { benchProcessSetup, childPids, children, cpuSecs, redisCleanup, freePort, loadavg, machineInfo, ROOT, rssKb, spawnAt, stopChild, waitExit, waitPort } from './common.js';

const opts = { users: 10_000, rate: 500, window: 40, settle: 10, bins: [], ejabberd: true, ws: false, xmpp: true, prof: undefined, workers: 1, tsung: 1, driver: 'tsung', ejabberdNodes: 1 };
for (let i = 2; i < process.argv.length; i++) {
  const k = process.argv[i];
  const v = process.argv[i + 1];
  if (k === '--no-ejabberd') opts.ejabberd = false;
  else if (k === '--ws') opts.ws = true;
  else if (k === '--no-xmpp') opts.xmpp = false;
  else if (k === '--keep') opts.keep = true;
  else if (k === '--redis') opts.redis = true;
  else if (k === '--progress') opts.progress = true;
  else if (k === '--sched') (opts.sched = v, i++);
  else if (k === '--ejabberd-nodes') (opts.ejabberdNodes = Number(v), i++);
  else if (k === '--prof') (opts.prof = path.resolve(v), i++);
  else if (k === '--herald-bin') (opts.bins.push(path.resolve(v)), i++);
  else if (k === '--driver') (opts.driver = v, i++);
  else if (['--users', '--rate', '--window', '--settle', '--workers', '--tsung'].includes(k)) (opts[k.slice(2)] = Number(v), i++);
  else throw new Error(`unknown option ${k}`);
}
if (!opts.bins.length) opts.bins.push(path.join(ROOT, 'bin/herald.js'));
if (!['tsung', 'node'].includes(opts.driver)) throw new Error(`unknown driver ${opts.driver}`);
if (opts.sched !== undefined && !['rr', 'none'].includes(opts.sched)) throw new Error(`unknown --sched ${opts.sched}`);
/** Herald runs with the Redis engines: with workers, or one process given --redis. */
const USE_REDIS = opts.workers > 1 || opts.redis === true;
const RAMP_S = Math.ceil(opts.users / opts.rate);
/**
 * The arrival phase: long enough for every user even when tsung launches them slower than the
 * rate on a busy machine (it stops at the phase's end, and at maxnumber users); at most 10 min,
 * so that a run of 100k users still ends well within 15 min.
 */
const ARRIVAL_S = Math.min(RAMP_S * 4 + 10, 600);
/** Each user holds this long after its message: past the arrival phase, the settle time and the window (with a minute for the counting, which at 100k connections takes seconds per pass). */
const HOLD_S = ARRIVAL_S + opts.settle + opts.window + 60;
/** With every user launched, the wait for logins ends after this long without a new connection, ms. */
const STALL_MS = 30_000;
/** tsung writes its statistics every 10 s: after the window it runs this long more, then is stopped. */
const LAST_DUMP_MS = 12_000;
const EJABBERD_LIB = '/usr/lib/x86_64-linux-gnu';

/** Users of tsung instance k of opts.tsung (the last one takes the remainder). */
const usersOf = (k) => Math.floor(opts.users / opts.tsung) + (k === opts.tsung - 1 ? opts.users % opts.tsung : 0);
/** The <client> line of tsung instance k: its own loopback source address when there are several. */
const clientOf = (k) =>
  `<client host="localhost" use_controller_vm="true" maxusers="${usersOf(k) + 100}">${opts.tsung > 1 ? `<ip value="127.0.0.${k + 2}"/>` : ''}</client>`;
const rateOf = () => +(opts.rate / opts.tsung).toFixed(3);

/** tsung's XMPP scenario (TCP, SASL PLAIN) against 127.0.0.1:port, for instance k. */
function xmppScenario(port, k) {
  return `<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="warning" version="1.0" dumptraffic="false">
  <clients>${clientOf(k)}</clients>
  <servers><server host="127.0.0.1" port="${port}" type="tcp"/></servers>
  <load>
    <arrivalphase phase="1" duration="${ARRIVAL_S}" unit="second">
      <users maxnumber="${usersOf(k)}" arrivalrate="${rateOf()}" unit="second"/>
    </arrivalphase>
  </load>
  <options>
    <option type="ts_jabber" name="global_number" value="${usersOf(k)}"/>
    <option type="ts_jabber" name="userid_max" value="${usersOf(k)}"/>
    <option type="ts_jabber" name="domain" value="localhost"/>
    <option type="ts_jabber" name="username" value="${opts.tsung > 1 ? `t${k}user` : 'user'}"/>
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
function wsScenario(port, k) {
  const send = (id, body) => `<request subst="true"><websocket type="message">${body.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;')}</websocket></request>`;
  return `<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="warning" version="1.0">
  <clients>${clientOf(k)}</clients>
  <servers><server host="127.0.0.1" port="${port}" type="tcp"/></servers>
  <load>
    <arrivalphase phase="1" duration="${ARRIVAL_S}" unit="second">
      <users maxnumber="${usersOf(k)}" arrivalrate="${rateOf()}" unit="second"/>
    </arrivalphase>
  </load>
  <sessions>
    <session probability="100" name="im-hold-ws" type="ts_websocket">
      <setdynvars sourcetype="random_number" start="1" end="${usersOf(k)}"><var name="peer"/></setdynvars>
      <transaction name="login">
        <request><websocket type="connect" path="/connection/websocket" origin="http://127.0.0.1"/></request>
        ${send(1, '{"id":1,"cmd":"connect","user":"t${k}user%%_tsung_userid%%"}')}
        ${send(2, '{"id":2,"cmd":"subscribe","channel":"inbox:t${k}user%%_tsung_userid%%"}')}
      </transaction>
      ${send(3, '{"id":3,"cmd":"im.presence.set","state":"online"}')}
      <thinktime value="1" random="false"/>
      <transaction name="message">
        ${send(4, '{"id":4,"cmd":"im.send","to":"t${k}user%%_peer%%","clientId":"c%%_tsung_userid%%","data":{"text":"hello from a held user"}}')}
      </transaction>
      <thinktime value="${HOLD_S}" random="false"/>
      <request><websocket type="close"/></request>
    </session>
  </sessions>
</tsung>
`;
}

/**
 * An ss filter for the server's end of a connection on local port `port` (or any of an array's):
 * the servers listen on 127.0.0.1, and a tsung socket on another source address may happen to
 * have the same port number.
 */
const sports = (port) => `src 127.0.0.1 and ( ${[port].flat().map((p) => `sport = :${p}`).join(' or ')} )`;

/** Server-side established connections on `port` per owning process (pid → count), from `ss -p`. */
function establishedByPid(port) {
  try {
    const out = execFileSync('nice', ['-n', '10', 'sh', '-c', `ss -Htnp state established '( ${sports(port)} )'`], { encoding: 'utf8', maxBuffer: 1 << 28 });
    const by = {};
    for (const m of out.matchAll(/pid=(\d+)/g)) by[m[1]] = (by[m[1]] ?? 0) + 1;
    return by;
  } catch {
    return {};
  }
}

/** tsung's last dumped `users_count` (launched) and `users` (connected now) of one instance's log. */
function tsungNow(logDir) {
  try {
    const run = readdirSync(logDir).find((d) => /^\d{8}-\d{4}/.test(d));
    const lines = readFileSync(path.join(logDir, run, 'tsung.log'), 'utf8').split('\n');
    const last = (name) => {
      for (let i = lines.length - 1; i >= 0; i--) {
        const f = lines[i].trim().split(/\s+/);
        if (f[0] === 'stats:' && f[1] === name) return Number(f[name === 'users' ? 2 : 3]);
      }
      return 0;
    };
    return { launched: last('users_count'), connected: last('users') };
  } catch {
    return { launched: 0, connected: 0 };
  }
}

/**
 * Host-wide kernel counters: loopback backlog drops, handshakes completed while a listen queue
 * was full (the client's end is established, the server's never is), keepalive probes sent,
 * connections aborted on a timeout.
 */
function kernelCounters() {
  const drops = readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n').reduce((sum, line) => sum + parseInt(line.split(/\s+/)[1], 16), 0);
  const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const i = lines.findIndex((l) => l.startsWith('TcpExt:'));
  const names = lines[i].split(/\s+/);
  const values = lines[i + 1].split(/\s+/).map(Number);
  const tcp = (name) => values[names.indexOf(name)];
  return { loopbackDrops: drops, listenOverflows: tcp('ListenOverflows'), keepaliveProbes: tcp('TCPKeepAlive'), abortedOnTimeout: tcp('TCPAbortOnTimeout') };
}
const countersSince = (a) => Object.fromEntries(Object.entries(kernelCounters()).map(([k, v]) => [k, v - a[k]]));

/** Established TCP connections whose local port is `port` (the server side of each user). */
function established(port) {
  try {
    // At the default priority (the bench runs at -10): ss walks every socket, and at high priority
    // it would keep the kernel's own network work off the cores.
    return Number(execFileSync('nice', ['-n', '10', 'sh', '-c', `ss -Htn state established '( ${sports(port)} )' | wc -l`], { encoding: 'utf8' }).trim());
  } catch {
    return 0;
  }
}

/**
 * tsung's figures from the runs under logDirs (one per instance): counters (name → total), and
 * for each sample (transactions, connect) its count, mean and max over the whole run, ms.
 */
function tsungStats(logDirs) {
  const counters = {};
  const samples = {};
  const instances = [];
  for (const logDir of logDirs) {
    const run = readdirSync(logDir).find((d) => /^\d{8}-\d{4}/.test(d));
    if (!run) throw new Error(`no tsung run directory in ${logDir}`);
    const last = {};
    for (const line of readFileSync(path.join(logDir, run, 'tsung.log'), 'utf8').split('\n')) {
      // Counters: "stats: name this-interval total"; samples: "stats: name count mean stddev max min meanfull countfull".
      const f = line.trim().split(/\s+/);
      if (f[0] !== 'stats:' || f.length < 4) continue;
      // The `users` line is a gauge: "stats: users now max".
      if (f.length === 4) last[f[1]] = Number(f[f[1] === 'users' ? 2 : 3]);
      else {
        const s = (samples[f[1]] ??= { count: 0, sum: 0, max: 0 });
        const count = Number(f[2]);
        s.count += count;
        s.sum += count * Number(f[3]);
        if (count > 0) s.max = Math.max(s.max, Number(f[5]));
      }
    }
    for (const [k, v] of Object.entries(last)) counters[k] = (counters[k] ?? 0) + v;
    // tsung's own view per instance: users launched, and users connected at its last dump.
    instances.push({ launched: last.users_count ?? 0, connectedAtLastDump: last.users ?? 0 });
  }
  const out = {};
  for (const [k, s] of Object.entries(samples)) out[k] = { count: s.count, meanMs: s.count ? +(s.sum / s.count).toFixed(1) : 0, maxMs: +s.max.toFixed(1) };
  return { counters, samples: out, instances };
}

/** Start one Herald build; resolves with its pids, port and a stop function. */
async function startHerald(bin, dir) {
  const [port, xmppPort] = [await freePort(), await freePort()];
  const config = path.join(dir, 'herald.json');
  const prefix = `imtsung-${process.pid}-${path.basename(dir)}:`;
  const cluster = USE_REDIS ? { ...(opts.workers > 1 ? { workers: opts.workers } : {}), redis: { url: 'redis://127.0.0.1:6379', prefix } } : {};
  writeFileSync(config, JSON.stringify({ dev: true, host: '127.0.0.1', port, dataDir: path.join(dir, 'data'), logLevel: 'warn', xmpp: { tcpPort: xmppPort }, ...cluster }));
  // tsung logs every user in from one address: lift the per-address caps.
  const env = { ...process.env, HERALD_LIMITS_MAX_CONNECTIONS_PER_IP: '0', HERALD_LIMITS_CONNECTIONS_PER_IP_PER_SECOND: '0', ...(opts.sched ? { NODE_CLUSTER_SCHED_POLICY: opts.sched } : {}) };
  const prof = opts.prof ? ['--cpu-prof', '--cpu-prof-dir', opts.prof] : [];
  const child = spawnAt('0', process.execPath, [...prof, bin, 'serve', '--config', config], { cwd: path.dirname(path.dirname(bin)), env, stdio: ['ignore', 'ignore', 'inherit'] });
  await waitPort(xmppPort);
  await waitPort(port);
  /** Messages Herald stored (its /metrics; development mode trusts loopback). */
  const stored = async () => {
    // With workers every node has its own series (labelled by node): add them up. A scrape made
    // while the host is busy can lack a worker's series: the most of three is taken.
    let most = NaN;
    for (let attempt = 0; attempt < 3; attempt++) {
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      const series = [...metrics.matchAll(/^herald_im_messages_stored_total(?:\{[^}]*\})? (\d+)/gm)];
      const sum = series.reduce((total, m) => total + Number(m[1]), 0);
      if (series.length && !(sum <= most)) most = sum;
      await sleep(1_000);
    }
    return most;
  };
  const stop = async () => {
    await stopChild(child, 'SIGINT');
    if (USE_REDIS) redisCleanup(prefix);
  };
  // With workers the primary's children are the nodes (read when measured: they start after it).
  return { pids: () => [child.pid, ...childPids(child.pid)], port, xmppPort, stored, stop };
}

/** ejabberd's configuration: anonymous login over SASL PLAIN on 127.0.0.1:port. */
function ejabberdConfig(port) {
  return `hosts: [localhost]
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
`;
}

/**
 * Start a private ejabberd (its own config, spool and logs under dir); resolves with its pids,
 * ports and a stop function. With --ejabberd-nodes N > 1 (one BEAM process holds at most 20,000
 * open files) it is a cluster of N nodes on this host, each with its own config, spool, port and
 * distributed node name, joined as `ejabberdctl join_cluster` does (ejabberd_admin:join_cluster
 * called on each new node by a hidden control node); tsung instance k connects to node k mod N.
 */
async function startEjabberd(dir) {
  const nodes = opts.ejabberdNodes;
  const cookie = `herald-bench-${process.pid}`;
  const host = os.hostname().split('.')[0];
  const nameOf = (i) => `ej${i}-${process.pid}`;
  const started = [];
  const stop = async () => {
    for (const { child } of started.reverse()) await stopChild(child, 'SIGTERM');
  };
  try {
    for (let i = 0; i < nodes; i++) {
      const nodeDir = nodes > 1 ? path.join(dir, `node-${i}`) : dir;
      const port = await freePort();
      for (const d of ['spool', 'logs']) mkdirSync(path.join(nodeDir, d), { recursive: true });
      const config = path.join(nodeDir, 'ejabberd.yml');
      writeFileSync(config, ejabberdConfig(port));
      const env = {
        ...process.env,
        ERL_LIBS: EJABBERD_LIB,
        EJABBERD_CONFIG_PATH: config,
        EJABBERD_LOG_PATH: path.join(nodeDir, 'logs', 'ejabberd.log'),
        ERL_CRASH_DUMP: path.join(nodeDir, 'logs', 'erl_crash.dump'),
        ERL_MAX_PORTS: '65536',
        HOME: nodeDir,
      };
      // As ejabberdctl's `foreground`; one node needs no distributed name (nor epmd).
      const dist = nodes > 1 ? ['-sname', nameOf(i), '-setcookie', cookie] : [];
      const child = spawnAt('0', '/usr/bin/erl', ['+K', 'true', '+P', '1000000', '-noinput', ...dist, '-mnesia', 'dir', `"${path.join(nodeDir, 'spool')}"`, '-s', 'ejabberd'], {
        cwd: nodeDir,
        env,
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      started.push({ child, port });
      await waitPort(port, 60_000);
      if (i === 0) continue;
      // Join node 0's cluster: ejabberd restarts on this node with copies of the cluster's tables.
      const join = `R = rpc:call('${nameOf(i)}@${host}', ejabberd_admin, join_cluster, [<<"${nameOf(0)}@${host}">>]), io:format("~p~n", [R]), halt().`;
      const out = execFileSync('/usr/bin/erl', ['-noinput', '-hidden', '-sname', `ctl${i}-${process.pid}`, '-setcookie', cookie, '-eval', join], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, HOME: nodeDir } });
      if (!/ok/.test(out)) throw new Error(`ejabberd node ${i} did not join: ${out}`);
      await sleep(2_000);
      await waitPort(port, 60_000);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const ports = started.map((n) => n.port);
  return { pids: () => started.map((n) => n.child.pid), port: ports[0], xmppPort: ports[0], xmppPorts: ports, stop };
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

const cpuOf = (pids) => pids().reduce((s, p) => s + cpuSecs(p), 0);
const rssOf = (pids) => pids().reduce((s, p) => s + rssKb(p), 0);
/** The host's Redis server (serves the workers' sessions, presence and broker). */
function redisPids() {
  try {
    return execFileSync('pgrep', ['-x', 'redis-server'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Run one scenario against one started server and measure. */
async function measure(name, server, scenarioOf, dir) {
  await sleep(2_000);
  const rss0 = rssOf(server.pids);
  const cpuStart = cpuOf(server.pids);
  const loginPids = server.pids();
  const loginCpuByPid0 = loginPids.map(cpuSecs);
  const redisLogin0 = cpuOf(redisPids);
  const logDirs = [];
  const tsungs = [];
  const started = Date.now();
  const websocket = scenarioOf(0).includes('ts_websocket');
  const drivers = [];
  const kernel0 = kernelCounters();
  for (let k = 0; k < opts.tsung && opts.driver === 'node' && !websocket; k++) {
    const args = ['--port', String(server.xmppPort), '--users', String(usersOf(k)), '--rate', String(rateOf()), '--prefix', opts.tsung > 1 ? `t${k}user` : 'user'];
    if (opts.tsung > 1) args.push('--host', `127.0.0.${k + 2}`);
    const driver = spawnAt('1', process.execPath, [path.join(ROOT, 'bench/xmpp-login-driver.js'), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    driver.stdout.on('data', (d) => (out += d));
    drivers.push({ child: driver, result: () => JSON.parse(out.trim().split('\n').at(-1)) });
  }
  for (let k = 0; k < opts.tsung && !drivers.length; k++) {
    const scenario = scenarioOf(k);
    const conf = path.join(dir, `tsung-${k}.xml`);
    writeFileSync(conf, scenario);
    const logDir = path.join(dir, `tsung-log-${k}`);
    logDirs.push(logDir);
    // In its own process group: the tsung script leaves its Erlang VM behind when only it is stopped.
    // Every instance needs its own controller name (-i), unique across runs on the host too.
    const home = path.join(dir, `tsung-home-${k}`);
    mkdirSync(home);
    const tsung = spawnAt('1', 'tsung', ['-f', conf, '-l', logDir, '-n', '-i', `${k}p${process.pid}`, 'start'], { cwd: dir, env: { ...process.env, HOME: home }, stdio: ['ignore', 'ignore', 'inherit'], detached: true });
    tsungGroups.add(tsung.pid);
    tsungs.push(tsung);
  }
  const port = websocket ? server.port : (server.xmppPorts ?? server.xmppPort);
  // Wait for every user to be in (or the slack to run out), then let the logins' garbage settle.
  let held = 0;
  const loginDeadline = started + ARRIVAL_S * 1000;
  let nextProgress = Date.now() + 10_000;
  // Stop waiting early once tsung has launched every user and the count has not grown for a while
  // (users lost on the way are not coming back).
  let most = 0;
  let grew = Date.now();
  while (Date.now() < loginDeadline && (held = established(port)) < opts.users) {
    if (held > most) [most, grew] = [held, Date.now()];
    const tsungNows = logDirs.map(tsungNow);
    if (logDirs.length && tsungNows.every((t, k) => t.launched >= usersOf(k)) && Date.now() - grew > STALL_MS) break;
    if (opts.progress && Date.now() >= nextProgress) {
      nextProgress += 10_000;
      // Where the users are during the ramp: per server process, and per tsung instance (launched/connected).
      console.error(`  ${((Date.now() - started) / 1000).toFixed(0)} s: ${held} established ${JSON.stringify(establishedByPid(port))}; tsung ${tsungNows.map((t) => `${t.launched}/${t.connected}`).join(' ')}; load ${loadavg()}`);
    }
    await sleep(2_000);
  }
  const allInSecs = (Date.now() - started) / 1000;
  const loginCpu = cpuOf(server.pids) - cpuStart;
  const loginCpuByPid = loginPids.map((p, i) => cpuSecs(p) - loginCpuByPid0[i]);
  const redisLoginCpu = cpuOf(redisPids) - redisLogin0;
  // With --progress, the server's CPU every 10 s of the settle time and the window (where a
  // post-login collection lands).
  const quietFor = async (secs) => {
    const end = Date.now() + secs * 1000;
    while (Date.now() < end) {
      const c0 = cpuOf(server.pids);
      const step = Math.min(10_000, end - Date.now());
      await sleep(step);
      if (opts.progress) console.error(`  ${((Date.now() - started) / 1000).toFixed(0)} s: server CPU ${(((cpuOf(server.pids) - c0) / step) * 100_000).toFixed(1)} % of a core`);
    }
  };
  await quietFor(opts.settle);
  const heldAtStart = established(port);
  const pids = server.pids();
  const cpu0 = cpuOf(server.pids);
  const cpuByPid0 = pids.map(cpuSecs);
  const redis0 = cpuOf(redisPids);
  const t0 = Date.now();
  await quietFor(opts.window);
  const cpuByPid = pids.map((p, i) => +(cpuSecs(p) - cpuByPid0[i]).toFixed(2));
  const cpu1 = cpuOf(server.pids);
  const redis1 = cpuOf(redisPids);
  const windowSecs = (Date.now() - t0) / 1000;
  const heldAtEnd = established(port);
  const kernel = countersSince(kernel0);
  if (opts.progress) console.error(`  window end: ${heldAtEnd} established ${JSON.stringify(establishedByPid(port))}; tsung ${logDirs.map(tsungNow).map((t) => `${t.launched}/${t.connected}`).join(' ')}`);
  const rss1 = rssOf(server.pids);
  // The first user leaves HOLD_S after its message: the window must have ended before.
  const windowClean = Date.now() < started + HOLD_S * 1000;
  // Every login and message is in tsung's statistics by now; its users would only leave.
  if (tsungs.length) await sleep(LAST_DUMP_MS);
  for (const tsung of tsungs) {
    killGroup(tsung.pid);
    tsungGroups.delete(tsung.pid);
    await waitExit(tsung, 10_000);
  }
  const stored = server.stored ? await server.stored() : undefined;
  const common = {
    server: name,
    users: opts.users,
    rate: opts.rate,
    held: Math.min(held, heldAtEnd),
    heldWindow: [heldAtStart, heldAtEnd],
    allInSecs: +allInSecs.toFixed(1),
    messagesStored: stored,
    kbPerUser: +((rss1 - rss0) / Math.max(1, heldAtEnd)).toFixed(1),
    rssMb: +(rss1 / 1024).toFixed(0),
    idleCpuPct: +(((cpu1 - cpu0) / windowSecs) * 100).toFixed(2),
    idleCpuSecsByProcess: cpuByPid,
    redisIdleCpuPct: USE_REDIS ? +(((redis1 - redis0) / windowSecs) * 100).toFixed(2) : undefined,
    processes: server.pids().length,
    loginCpuSecsPer1k: +((loginCpu / Math.max(1, held)) * 1000).toFixed(2),
    // Per process (the primary first, then the workers), and Redis's over the same ramp.
    loginCpuSecsPer1kByProcess: loginCpuByPid.map((c) => +((c / Math.max(1, held)) * 1000).toFixed(2)),
    redisLoginCpuSecsPer1k: USE_REDIS ? +((redisLoginCpu / Math.max(1, held)) * 1000).toFixed(2) : undefined,
    windowClean,
    kernel,
    load: loadavg(),
  };
  if (drivers.length) {
    // The Node driver: every login timed; its users are closed once it has reported.
    const results = [];
    for (const d of drivers) {
      d.child.kill('SIGINT');
      await waitExit(d.child, 30_000);
      results.push(d.result());
    }
    const all = (f) => results.reduce((s, r) => s + r[f], 0);
    // Percentiles of several drivers are not merged: with one driver (up to 19,000 users) they are exact.
    const login = results.length === 1 ? results[0].login : { count: all('loggedIn'), meanMs: +(results.reduce((s, r) => s + r.login.meanMs * r.loggedIn, 0) / Math.max(1, all('loggedIn'))).toFixed(1), maxMs: Math.max(...results.map((r) => r.login.maxMs)) };
    return { ...common, driver: 'node', started: all('started'), loggedIn: all('loggedIn'), errors: all('errors'), login, drivers: results };
  }
  const { counters, samples, instances } = tsungStats(logDirs);
  const errors = Object.fromEntries(Object.entries(counters).filter(([k, v]) => k.startsWith('error') && v > 0));
  return { ...common, tsungStarted: counters.users_count ?? 0, errors, login: samples.tr_login, connect: samples.connect, tsungInstances: instances };
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
    const r = await measure(name, server, (k) => scenarioOf(server, k), dir);
    console.log(JSON.stringify(r));
    return r;
  } finally {
    await server.stop();
    if (opts.keep) console.error(`  kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

benchProcessSetup();
const epmdBefore = epmds();
console.error(`im-tsung: ${opts.users} users at ${opts.rate}/s, hold ${HOLD_S} s, idle window ${opts.window} s; load ${loadavg()}`);
console.error(JSON.stringify(machineInfo()));
try {
  if (opts.ejabberd) await run(`ejabberd 23.01 (XMPP/TCP)${opts.ejabberdNodes > 1 ? `, ${opts.ejabberdNodes} nodes` : ''}`, startEjabberd, (s, k) => xmppScenario(s.xmppPorts[k % s.xmppPorts.length], k));
  for (const bin of opts.bins) {
    const label = path.relative(process.cwd(), bin) || bin;
    if (opts.xmpp) await run(`herald ${label} (XMPP/TCP)`, (dir) => startHerald(bin, dir), (s, k) => xmppScenario(s.xmppPort, k));
    if (opts.ws) await run(`herald ${label} (native/WebSocket)`, (dir) => startHerald(bin, dir), (s, k) => wsScenario(s.port, k));
  }
} finally {
  for (const pid of epmds()) if (!epmdBefore.has(pid)) process.kill(pid, 'SIGTERM');
  for (const c of children) c.kill('SIGKILL');
}
console.error(`load after: ${loadavg()}`);
