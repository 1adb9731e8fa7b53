#!/usr/bin/env node
// A Node XMPP client load for bench/im-tsung.js (`--driver node`): the same session as tsung's
// classic scenario (TCP connect, stream header, SASL PLAIN, stream restart, bind, session, initial
// presence, one chat message to the previous user, hold), at a fixed arrival rate, timing every
// login (TCP connect to the session result) so that percentiles can be reported, which tsung 1.7's
// statistics (count, mean, max per 10 s) cannot give. Runs until SIGINT, then prints one JSON line
// (logins, errors, login time mean / p50 / p90 / p99 / max, ms, and the same per step: TCP
// connect, stream header, SASL, restart, bind, session; `perSecond`: [logins, mean, max] of the
// users that arrived in each second, so a queue at the start of the ramp shows) and closes
// every connection.
//
//   node bench/xmpp-login-driver.js --port P [--host 127.0.0.1] [--users 10000] [--rate 500] [--prefix user]
import net from 'node:net';

const opts = { port: 0, host: '127.0.0.1', users: 10_000, rate: 500, prefix: 'user', domain: 'localhost' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].slice(2);
  if (!(k in opts)) throw new Error(`unknown option --${k}`);
  opts[k] = typeof opts[k] === 'number' ? Number(process.argv[i + 1]) : process.argv[i + 1];
}

const HEADER = `<?xml version='1.0'?><stream:stream to='${opts.domain}' xmlns='jabber:client' version='1.0' xmlns:stream='http://etherx.jabber.org/streams'>`;
/** The login's steps: what is sent, and what ends the server's answer to it. */
const STEPS = [
  { send: () => HEADER, until: /<\/stream:features>/ },
  { send: (u) => `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${u}\0pass`).toString('base64')}</auth>`, until: /<success/, fail: /<failure/ },
  { send: () => HEADER, until: /<\/stream:features>/ },
  { send: () => `<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>tsung</resource></bind></iq>`, until: /<\/iq>/ },
  { send: () => `<iq type='set' id='sess_1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>`, until: /sess_1/ },
];

const STEP_NAMES = ['connect', 'header', 'sasl', 'restart', 'bind', 'session'];
const times = [];
/** Per second of arrival (from the first user's), the logins that started in it: count, mean and max login time, ms. */
const bySecond = [];
/** Per step (STEP_NAMES), the time of each login's step, ms. */
const stepTimes = STEP_NAMES.map(() => []);
const sockets = [];
let errors = 0;
/** Failed logins by step and cause. */
const errorKinds = {};
let started = 0;

function login(n) {
  const user = `${opts.prefix}${n}`;
  const t0 = performance.now();
  let last = t0;
  const lap = (i) => {
    const now = performance.now();
    stepTimes[i].push(now - last);
    last = now;
  };
  const socket = net.connect({ port: opts.port, host: opts.host });
  sockets.push(socket);
  socket.setNoDelay(true);
  socket.setEncoding('utf8');
  let step = 0;
  let buf = '';
  let done = false;
  let connected = false;
  /** A login that did not finish, counted by where it stopped and why (`connect:ECONNREFUSED`, `sasl:closed`…). */
  const fail = (why) => {
    if (done) return;
    done = true;
    errors++;
    const where = connected ? STEP_NAMES[step + 1] : 'connect';
    errorKinds[`${where}:${why}`] = (errorKinds[`${where}:${why}`] ?? 0) + 1;
    socket.destroy();
  };
  socket.on('error', (err) => fail(err.code ?? 'error'));
  socket.on('close', () => {
    if (step < STEPS.length) fail('closed');
  });
  socket.on('connect', () => {
    connected = true;
    lap(0);
    socket.write(STEPS[0].send(user));
  });
  socket.on('data', (chunk) => {
    if (step >= STEPS.length) return;
    buf += chunk;
    const s = STEPS[step];
    if (s.fail?.test(buf)) return fail('failure');
    if (!s.until.test(buf)) return;
    buf = '';
    lap(step + 1);
    if (++step < STEPS.length) return void socket.write(STEPS[step].send(user));
    done = true;
    const ms = performance.now() - t0;
    times.push(ms);
    const sec = (bySecond[Math.floor((t0 - firstArrival) / 1000)] ??= { count: 0, sumMs: 0, maxMs: 0 });
    sec.count++;
    sec.sumMs += ms;
    sec.maxMs = Math.max(sec.maxMs, ms);
    const to = n > 1 ? `${opts.prefix}${n - 1}@${opts.domain}` : `${user}@${opts.domain}`;
    socket.write(`<presence/><message to='${to}' type='chat' id='m${n}'><body>hello from a held user ${n}</body></message>`);
  });
}

// Arrivals: one user every 1000 / rate ms, launched in 10 ms batches.
const t0 = performance.now();
const firstArrival = t0;
const timer = setInterval(() => {
  const due = Math.min(opts.users, Math.floor(((performance.now() - t0) * opts.rate) / 1000));
  while (started < due) login(++started);
  if (started >= opts.users) clearInterval(timer);
}, 10);

const pct = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : 0);
process.on('SIGINT', () => {
  clearInterval(timer);
  const r = (x) => +x.toFixed(1);
  const summary = (xs) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const mean = sorted.length ? sorted.reduce((s, x) => s + x, 0) / sorted.length : 0;
    return { count: sorted.length, meanMs: r(mean), p50Ms: r(pct(sorted, 50)), p90Ms: r(pct(sorted, 90)), p99Ms: r(pct(sorted, 99)), maxMs: r(sorted.at(-1) ?? 0) };
  };
  const open = sockets.filter((s) => !s.destroyed).length;
  const steps = Object.fromEntries(STEP_NAMES.map((name, i) => [name, summary(stepTimes[i])]));
  const perSecond = Array.from(bySecond, (b = { count: 0, sumMs: 0, maxMs: 0 }) => [b.count, r(b.count ? b.sumMs / b.count : 0), r(b.maxMs)]);
  console.log(JSON.stringify({ started, loggedIn: times.length, open, errors, errorKinds, login: summary(times), steps, perSecond }));
  for (const s of sockets) s.destroy();
  process.exit(0);
});
