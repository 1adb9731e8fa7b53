#!/usr/bin/env node
// tsung (Debian's tsung 1.7, its jabber plugin) against Herald's XMPP TCP port: the classic
// scenario of issue 15: each user connects, logs in (jabber:iq:auth, the token-less development
// mode: any password), sends its initial presence, sends one chat message to a user that is
// online, and closes. Passes only with every user finished, zero tsung errors and one message
// stored by Herald per user (its /metrics); prints the
// users, the run time and tsung's own counters. Herald runs from --herald-bin (default
// bin/herald.js, i.e. dist/: `npm run build` first) in development mode on loopback; every
// process is stopped by pid. Never part of `npm test`.
//
//   node bench/xmpp-tsung.js [--users 200] [--rate 50] [--herald-bin bin/herald.js]
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchProcessSetup, children, freePort, ROOT, stopChild, waitPort } from './common.js';

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? fallback : process.argv[i + 1];
}

const USERS = Number(option('users', '200'));
const RATE = Number(option('rate', '50'));
const HERALD_BIN = path.resolve(option('herald-bin', path.join(ROOT, 'bin/herald.js')));
/** Longest tsung run before it is stopped and counted as failed, ms. */
const TSUNG_TIMEOUT_MS = Math.max(120_000, (USERS / RATE) * 1000 * 4 + 60_000);

/** The tsung scenario: log in, presence, one message, close. */
function scenario(port) {
  // Arrivals are random at RATE per second: a phase twice as long as needed, capped at USERS, brings them all.
  const duration = Math.ceil((USERS / RATE) * 2) + 5;
  return `<?xml version="1.0"?>
<!DOCTYPE tsung SYSTEM "/usr/share/tsung/tsung-1.0.dtd">
<tsung loglevel="notice" version="1.0">
  <clients><client host="localhost" use_controller_vm="true" maxusers="${USERS + 10}"/></clients>
  <servers><server host="127.0.0.1" port="${port}" type="tcp"/></servers>
  <load>
    <arrivalphase phase="1" duration="${duration}" unit="second">
      <users maxnumber="${USERS}" arrivalrate="${RATE}" unit="second"/>
    </arrivalphase>
  </load>
  <options>
    <option type="ts_jabber" name="global_number" value="${USERS}"/>
    <option type="ts_jabber" name="userid_max" value="${USERS}"/>
    <option type="ts_jabber" name="domain" value="localhost"/>
    <option type="ts_jabber" name="username" value="tsung"/>
    <option type="ts_jabber" name="passwd" value="pass"/>
  </options>
  <sessions>
    <session probability="100" name="login-presence-message-close" type="ts_jabber">
      <request><jabber type="connect" ack="no_ack"/></request>
      <transaction name="authenticate">
        <request><jabber type="auth_get" ack="local"/></request>
        <request><jabber type="auth_set_plain" ack="local"/></request>
      </transaction>
      <request><jabber type="presence:initial" ack="no_ack"/></request>
      <thinktime value="1"/>
      <transaction name="message">
        <request><jabber type="chat" ack="no_ack" size="32" destination="online"/></request>
      </transaction>
      <thinktime value="1"/>
      <transaction name="close">
        <request><jabber type="close" ack="no_ack"/></request>
      </transaction>
    </session>
  </sessions>
</tsung>
`;
}

/** tsung's counters from the last dump in tsung.log: name → total (for samples such as tr_message: how many). */
function counters(logDir) {
  const run = readdirSync(logDir).find((d) => /^\d{8}-\d{4}/.test(d));
  if (!run) throw new Error(`no tsung run directory in ${logDir}`);
  const text = readFileSync(path.join(logDir, run, 'tsung.log'), 'utf8');
  const totals = {};
  for (const line of text.split('\n')) {
    // Counters: "stats: name this-interval total"; samples: "stats: name count mean stddev max min meanfull countfull".
    const f = line.trim().split(/\s+/);
    if (f[0] !== 'stats:' || f.length < 4) continue;
    if (f.length === 4) totals[f[1]] = Number(f[3]);
    else totals[f[1]] = (totals[f[1]] ?? 0) + Number(f[2]);
  }
  return totals;
}

async function main() {
  benchProcessSetup();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'herald-tsung-'));
  const [port, xmppPort] = [await freePort(), await freePort()];
  const configFile = path.join(dir, 'herald.json');
  writeFileSync(
    configFile,
    JSON.stringify({ dev: true, host: '127.0.0.1', port, dataDir: path.join(dir, 'data'), logLevel: 'warn', xmpp: { tcpPort: xmppPort } }),
  );
  const herald = spawn(process.execPath, [HERALD_BIN, 'serve', '--config', configFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(herald);
  let failed = true;
  try {
    await waitPort(xmppPort);
    const conf = path.join(dir, 'tsung.xml');
    writeFileSync(conf, scenario(xmppPort));
    const logDir = path.join(dir, 'log');
    const started = Date.now();
    const tsung = spawn('tsung', ['-f', conf, '-l', logDir, '-n', 'start'], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.add(tsung);
    const timer = setTimeout(() => tsung.kill('SIGTERM'), TSUNG_TIMEOUT_MS);
    const code = await new Promise((resolve) => tsung.once('exit', resolve));
    clearTimeout(timer);
    children.delete(tsung);
    const seconds = (Date.now() - started) / 1000;
    const c = counters(logDir);
    // Herald's own count of stored messages (development mode trusts loopback for /metrics).
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const stored = Number(/^herald_im_messages_stored_total(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? NaN);
    const errors = Object.entries(c).filter(([k, v]) => k.startsWith('error') && v > 0);
    const finished = c.finish_users_count ?? 0;
    console.log(
      JSON.stringify(
        { users: USERS, rate: RATE, tsungExit: code, seconds, finished, messagesStored: stored, errors: Object.fromEntries(errors), counters: c, node: process.version },
        null,
        2,
      ),
    );
    failed = code !== 0 || errors.length > 0 || finished !== USERS || stored !== USERS;
    if (failed) console.error(`tsung: ${finished}/${USERS} users finished, ${stored} messages stored, ${errors.length} error kinds, exit ${code}`);
  } finally {
    await stopChild(herald);
    rmSync(dir, { recursive: true, force: true });
  }
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.error(err);
  for (const c of children) c.kill('SIGKILL');
  process.exit(1);
});
