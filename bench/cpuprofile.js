// Summary of a V8 .cpuprofile (node --cpu-prof) over a time window: where the CPU went between
// two instants of the monotonic clock (`process.hrtime.bigint()` in any process of the host,
// which is the clock V8 stamps its samples with on Linux). Used by bench/failover.js to profile
// the reconnect storm alone, not the ramp before it.
import { readFileSync } from 'node:fs';

/** Where a frame's code lives, coarse: which layer pays for a sample. */
function area(url, name) {
  if (name === '(garbage collector)') return 'gc';
  if (name === '(idle)') return 'idle';
  if (name === '(program)' || name === '(root)') return 'program (native, outside JS)';
  if (!url) return `native: ${name}`;
  const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (m) return `npm: ${m[1]}`;
  const d = url.match(/\/dist\/(.+?)\.js$/);
  if (d) return `herald: ${d[1]}`;
  if (url.startsWith('node:')) return url.replace(/^node:internal\//, 'node:');
  return url;
}

/**
 * Self time per function and per area, and inclusive time of the frames whose function name
 * matches one of `marks` (regular expressions by label), for samples in [fromUs, toUs].
 */
export function summarizeProfile(file, fromUs, toUs, marks = {}) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const selfByFn = new Map();
  const selfByArea = new Map();
  const incl = Object.fromEntries(Object.keys(marks).map((k) => [k, 0]));
  let t = prof.startTime;
  let total = 0;
  let idle = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    t += dt;
    if (t < fromUs || t > toUs) continue;
    const next = prof.timeDeltas[i + 1] ?? dt;
    const node = byId.get(prof.samples[i]);
    const cf = node.callFrame;
    const a = area(cf.url, cf.functionName);
    if (a === 'idle') {
      idle += next;
      continue;
    }
    total += next;
    const fn = `${cf.functionName || '(anonymous)'} ${area(cf.url, cf.functionName)}:${cf.lineNumber + 1}`;
    selfByFn.set(fn, (selfByFn.get(fn) ?? 0) + next);
    selfByArea.set(a, (selfByArea.get(a) ?? 0) + next);
    const seen = new Set();
    for (let id = node.id; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id).callFrame;
      for (const [k, re] of Object.entries(marks)) {
        if (!seen.has(k) && re.test(`${f.functionName} ${f.url}`)) {
          seen.add(k);
          incl[k] += next;
        }
      }
    }
  }
  const top = (m, n) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => [k, Math.round(us / 1000)]);
  return {
    busyMs: Math.round(total / 1000),
    idleMs: Math.round(idle / 1000),
    byArea: top(selfByArea, 25),
    topSelf: top(selfByFn, 30),
    inclusiveMs: Object.fromEntries(Object.entries(incl).map(([k, us]) => [k, Math.round(us / 1000)])),
  };
}
