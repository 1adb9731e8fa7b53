/**
 * Micro benchmark: the CPU a Node process spends per Redis script call made one at a time (the
 * next call waits for the answer, as one login's presence update does when logins do not share
 * an event-loop turn), with ioredis' auto-pipelining off and on. The script has the size of the
 * presence engine's (a 1.4 KB body sent with EVAL). Keys `herald-bench-ap:*`, deleted at the end.
 *
 *   taskset -c 0 node --import tsx bench/micro/redis-autopipeline.ts [calls=20000]
 *
 * Needs Redis on 127.0.0.1:6379; run under the bench lock. Never part of `npm test`.
 */
import { Redis } from 'ioredis';

const calls = Number(process.argv[2] ?? 20_000);
const body = `local t = redis.call('TIME')\n-- ${'x'.repeat(1400)}\nredis.call('HSET', KEYS[1], 'n', ARGV[1])\nreturn {1, false, false, false}`;
const key = (i: number): string => `herald-bench-ap:{u${i % 100}}`;

for (const autoPipelining of [false, true, false, true]) {
  const r = new Redis('redis://127.0.0.1:6379', { enableAutoPipelining: autoPipelining });
  // Warm-up: JIT and Redis's script cache.
  for (let i = 0; i < 2_000; i++) await r.eval(body, 2, key(i), 'herald-bench-ap:l', 'n');
  const c0 = process.cpuUsage();
  for (let i = 0; i < calls; i++) await r.eval(body, 2, key(i), 'herald-bench-ap:l', 'n');
  const c = process.cpuUsage(c0);
  console.log(JSON.stringify({ autoPipelining, calls, cpuUsPerCall: +((c.user + c.system) / calls).toFixed(1) }));
  r.disconnect();
}
const r = new Redis('redis://127.0.0.1:6379');
await r.del(...Array.from({ length: 100 }, (_, i) => key(i)));
r.disconnect();
