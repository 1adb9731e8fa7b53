/**
 * The shared byte budget of history answers (core/history-budget.ts): what it keeps fits the
 * budget (but for the one it always keeps), is a contiguous run from the right end, stays oldest
 * first, and nothing more would have fit.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { historyWithin } from '../../src/core/history-budget.js';
import type { Publication } from '../../src/core/publication.js';

const pub = (offset: number, size: number): Publication => ({ channel: 'c', epoch: 'e', offset, time: offset, payload: Buffer.alloc(size) });
const sizeOf = (p: Publication): number => p.payload.length;

test('historyWithin keeps the newest (last) or oldest (resume) run that fits, and counts what it left out', () => {
  fc.assert(
    fc.property(
      fc.array(fc.nat(100), { maxLength: 30 }),
      fc.nat(600),
      fc.boolean(),
      fc.boolean(),
      fc.boolean(),
      (sizes, budget, resume, alwaysOne, recovered) => {
        const pubs = sizes.map((s, i) => pub(i + 1, s));
        const res = { publications: pubs, position: { epoch: 'e', offset: pubs.length }, recovered };
        const { result, bytes, omitted } = historyWithin(res, resume, budget, alwaysOne, sizeOf);
        const kept = result.publications;
        assert.equal(kept.length + omitted, pubs.length);
        assert.equal(
          bytes,
          kept.reduce((n, p) => n + sizeOf(p), 0),
        );
        assert.deepEqual(kept, resume ? pubs.slice(0, kept.length) : pubs.slice(pubs.length - kept.length), 'a contiguous run, oldest first');
        if (kept.length > 1 || !alwaysOne) assert.ok(bytes <= budget, 'within the budget');
        if (alwaysOne && pubs.length > 0) assert.ok(kept.length >= 1, 'the first always kept');
        if (omitted > 0) {
          const next = resume ? pubs[kept.length]! : pubs[pubs.length - kept.length - 1]!;
          assert.ok(bytes + sizeOf(next) > budget, 'the next one would not have fit');
          assert.equal(result.recovered, resume ? false : recovered, 'a cut resume is not recovered');
        } else assert.equal(result, res, 'untouched when everything fits');
      },
    ),
  );
});
