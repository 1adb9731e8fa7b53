#!/usr/bin/env node
// Import-graph checks that eslint's per-file rules cannot make (run by `npm run lint`):
//  1. no import cycles among src/ modules (type-only imports count: a cycle of types is still
//     two modules that cannot be understood apart);
//  2. an engine never imports a sibling engine: a file of src/engines/ may import its own parts
//     (`store-postgres.ts` → `store-postgres-migrations.ts`) and the engine-neutral helpers
//     (ENGINE_NEUTRAL below), never another engine (`presence-redis.ts` → `broker-redis.ts`).
//     What two engines share lives in core or in an engine-neutral module.
// Exits 1 and lists every violation.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), '..');
const SRC = join(ROOT, 'src');
/** Modules of src/engines/ that belong to no engine: connection and row helpers engines share. */
const ENGINE_NEUTRAL = /^(redis-[a-z-]+|sql-[a-z-]+|im-rows)\.ts$/;

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

// `import … from './x.js'`, `export … from './x.js'`, `import('./x.js')`, `import './x.js'`.
const IMPORT_RE = /(?:\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

function importsOf(file) {
  const text = readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/^\s*\/\/.*$/gm, '');
  const out = new Set();
  for (const m of text.matchAll(IMPORT_RE)) out.add(resolve(dirname(file), m[1].replace(/\.js$/, '.ts')));
  return [...out];
}

const files = walk(SRC);
const graph = new Map(files.map((f) => [f, importsOf(f).filter((t) => files.includes(t))]));
const rel = (f) => relative(ROOT, f);
const problems = [];

// 1. Cycles: Tarjan's strongly connected components; every component of more than one module
// (or a module importing itself) is a cycle.
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
function strong(v) {
  idx.set(v, index);
  low.set(v, index++);
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v)) {
    if (!idx.has(w)) {
      strong(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      comp.push(w);
    } while (w !== v);
    if (comp.length > 1 || graph.get(v).includes(v)) problems.push(`import cycle: ${comp.map(rel).sort().join(' <-> ')}`);
  }
}
for (const f of files) if (!idx.has(f)) strong(f);

// 2. Engines never import sibling engines.
const ENGINES = join(SRC, 'engines');
for (const [file, targets] of graph) {
  if (dirname(file) !== ENGINES) continue;
  const own = relative(ENGINES, file).replace(/\.ts$/, '');
  for (const t of targets) {
    if (dirname(t) !== ENGINES) continue;
    const name = relative(ENGINES, t);
    if (ENGINE_NEUTRAL.test(name) || name.startsWith(`${own}-`)) continue;
    problems.push(`engine imports a sibling engine: ${rel(file)} -> ${rel(t)} (move what they share to core or an engine-neutral module)`);
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(`import graph: ${files.length} modules, no cycles, no engine imports a sibling engine`);
