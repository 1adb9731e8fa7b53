#!/usr/bin/env node
// How many long-poll answers/s Node's HTTP server alone gives on one core: bench/peers/http-floor.js
// (pinned to core 0) answers every request at once; loadgen in long-poll mode (core 1) re-issues
// each request as soon as its answer arrives. Prints answers/s per round. The ceiling of any
// long-poll front built on node:http on this machine.
//
//   node bench/http-floor.js [--conns 1000] [--rounds 3] [--secs 3]
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ROOT, benchProcessSetup, buildLoadgen, freePort, loadavg, openConnections, spawnAt, statsAll, stopChild, waitPort } from './common.js';

const opt = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const conns = opt('conns', 1000);
const rounds = opt('rounds', 3);
const secs = opt('secs', 3);

benchProcessSetup();
buildLoadgen();
const port = await freePort();
const server = spawnAt('0', process.execPath, [path.join(ROOT, 'bench/peers/http-floor.js'), String(port)], { stdio: 'inherit' });
try {
  await waitPort(port);
  const open = await openConnections({ port, spec: { path: '/sub/floor', pre: 0, send: [], mode: 'longpoll' }, conns, tag: 'floor', cpu: '1' });
  console.log(`load ${loadavg()}; ${open.ready}/${conns} long-poll connections`);
  for (let r = 0; r < rounds; r++) {
    await statsAll(open.gens, 'reset');
    const t0 = performance.now();
    await sleep(secs * 1000);
    const answered = (await statsAll(open.gens)).reduce((s, x) => s + x.deliveries, 0);
    console.log(`round ${r + 1}: ${Math.round(answered / ((performance.now() - t0) / 1000))} answers/s`);
  }
  await Promise.all(open.gens.map((g) => g.quit()));
  console.log(`load ${loadavg()}`);
} finally {
  await stopChild(server);
}
