/**
 * Property-based fuzzing with fast-check: run counts, the seed and the arbitraries shared by the
 * fuzz suites (test/unit/fuzz, test/integration/fuzz).
 *
 * `npm test` runs every property a bounded number of times with a fixed seed (a few seconds in
 * all, the same inputs every run). `npm run test:fuzz` runs the same properties longer:
 * `HERALD_FUZZ_RUNS` sets the runs of a unit property (integration properties run a tenth of it,
 * each run being a real request), `HERALD_FUZZ_SEED` the seed (default: random, printed with any
 * failure so it can be replayed).
 */
import fc from 'fast-check';

/** Fixed seed of the bounded run in `npm test`. */
const BOUNDED_SEED = 20261207;

const envRuns = Number(process.env.HERALD_FUZZ_RUNS ?? '');
const envSeed = process.env.HERALD_FUZZ_SEED;

/** Whether this is a long run (`HERALD_FUZZ_RUNS` set). */
export const LONG_RUN = Number.isSafeInteger(envRuns) && envRuns > 0;

/**
 * fast-check parameters of one property: `bounded` runs with the fixed seed in `npm test`, or
 * `HERALD_FUZZ_RUNS × weight` runs (at least `bounded`) in a long run. Integration properties
 * pass a weight of 0.1.
 */
export function fuzzParams<T>(bounded: number, weight = 1): fc.Parameters<T> {
  if (!LONG_RUN) return { numRuns: bounded, seed: BOUNDED_SEED, endOnFailure: true, includeErrorInReport: true };
  const numRuns = Math.max(bounded, Math.round(envRuns * weight));
  return { numRuns, endOnFailure: true, includeErrorInReport: true, ...(envSeed === undefined ? {} : { seed: Number(envSeed) }) };
}

/** Weight of an integration property (each run is a real request over a socket). */
export const WIRE_WEIGHT = 0.1;

/** Any string: ASCII-heavy, with control characters, non-ASCII and lone surrogates mixed in. */
export const anyText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 64 }),
  fc.string({ maxLength: 64 }),
  fc.string({ unit: fc.constantFrom('\0', '\r', '\n', ':', '\\', '"', '{', '}', '[', ']', ',', '<', '>', '&', '%', '/', ' ', 'a', '1'), maxLength: 64 }),
);

/** One edit of a text: insert, delete, replace, duplicate or truncate. */
const edit = fc.oneof(
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: anyText }),
  fc.record({ op: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('replace' as const), at: fc.nat(), text: fc.string({ unit: 'binary', minLength: 1, maxLength: 4 }) }),
  fc.record({ op: fc.constant('repeat' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 32 }), times: fc.integer({ min: 2, max: 8 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
);
type Edit = typeof edit extends fc.Arbitrary<infer E> ? E : never;

function apply(text: string, e: Edit): string {
  const at = text.length === 0 ? 0 : e.at % (text.length + 1);
  switch (e.op) {
    case 'insert':
      return text.slice(0, at) + e.text + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + e.len);
    case 'replace':
      return text.slice(0, at) + e.text + text.slice(at + e.text.length);
    case 'repeat':
      return text.slice(0, at) + text.slice(at, at + e.len).repeat(e.times) + text.slice(at + e.len);
    case 'truncate':
      return text.slice(0, at);
  }
}

/**
 * Near-valid inputs: one of `samples` (valid inputs) with 1–4 random edits, or a completely
 * random string now and then. Most findings hide one edit away from a valid input.
 */
export function mutated(samples: readonly string[]): fc.Arbitrary<string> {
  const mutant = fc.tuple(fc.constantFrom(...samples), fc.array(edit, { minLength: 1, maxLength: 4 })).map(([s, edits]) => edits.reduce(apply, s));
  return fc.oneof({ arbitrary: mutant, weight: 4 }, { arbitrary: fc.constantFrom(...samples), weight: 1 }, { arbitrary: anyText, weight: 1 });
}

/** JSON values with awkward members: `__proto__`, `constructor`, huge numbers, deep nesting. */
export const awkwardJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom<unknown>(
    { __proto__: { admin: true } },
    JSON.parse('{"__proto__":{"x":1}}'),
    { constructor: { prototype: 1 } },
    1e308,
    -0,
    9007199254740993,
    '',
    [],
    {},
    null,
  ),
  fc.integer({ min: 60, max: 200 }).map((d) => JSON.parse('['.repeat(d) + ']'.repeat(d)) as unknown),
);

/** Mix `awkward` values into the members of a valid object (wrong types, extra keys, missing keys). */
export function mangledObject(valid: Record<string, unknown>): fc.Arbitrary<Record<string, unknown>> {
  const keys = Object.keys(valid);
  const member = keys.length > 0 ? fc.constantFrom(...keys) : fc.string({ maxLength: 4 });
  return fc
    .tuple(
      fc.subarray(keys),
      fc.dictionary(member, awkwardJson, { maxKeys: 3 }),
      fc.dictionary(fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'id', 'cmd')), awkwardJson, { maxKeys: 2 }),
    )
    .map(([kept, replaced, extra]) => {
      const out: Record<string, unknown> = {};
      for (const k of kept) out[k] = valid[k];
      for (const [k, v] of Object.entries(replaced)) out[k] = v;
      for (const [k, v] of Object.entries(extra)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      return out;
    });
}
