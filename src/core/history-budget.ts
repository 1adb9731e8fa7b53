/**
 * Byte budgets for history answers, shared by every front: one answer (a `history` reply, the
 * history a subscription starts with) stays within `limits.maxOutboundBytes`, so a reader is
 * not cut as a slow consumer for the size of its own answer and a socket that never reads holds
 * no more than that. Fronts measure their own encoding through `sizeOf`.
 */
import type { SubscribeResult } from './core.js';
import type { Publication } from './publication.js';

/**
 * How many of `items`, taken in order, fit `budget` bytes as measured by `sizeOf`, and the bytes
 * they take. `alwaysOne`: the first item counts whatever its size. Stops at the first item that
 * does not fit, so `sizeOf` runs on at most one item beyond those counted.
 */
export function countWithin<T>(items: Iterable<T>, budget: number, sizeOf: (item: T) => number, alwaysOne: boolean): { count: number; bytes: number } {
  let bytes = 0;
  let count = 0;
  for (const item of items) {
    const size = sizeOf(item);
    if (bytes + size > budget && !(alwaysOne && count === 0)) break;
    bytes += size;
    count++;
  }
  return { count, bytes };
}

/** The newest-first view of `items`, without copying them. */
function* newestFirst<T>(items: readonly T[]): Iterable<T> {
  for (let i = items.length - 1; i >= 0; i--) yield items[i]!;
}

/**
 * The part of a subscription's starting history that fits `budget` bytes, each publication
 * measured by `sizeOf` (its frame in the front's encoding, separators included). `alwaysOne`:
 * the first publication kept is kept whatever its size. A resume (`resume`: the client gave a
 * position) keeps the oldest publications and, when cut, is reported as not recovered (the
 * client reads the rest from its position); a `last` read keeps the newest. The publications
 * stay oldest first. Returns the result, the bytes it carries and how many were left out.
 */
export function historyWithin(
  result: SubscribeResult,
  resume: boolean,
  budget: number,
  alwaysOne: boolean,
  sizeOf: (pub: Publication) => number,
): { result: SubscribeResult; bytes: number; omitted: number } {
  const pubs = result.publications;
  const { count, bytes } = countWithin(resume ? pubs : newestFirst(pubs), budget, sizeOf, alwaysOne);
  if (count === pubs.length) return { result, bytes, omitted: 0 };
  const publications = resume ? pubs.slice(0, count) : pubs.slice(pubs.length - count);
  return { result: { ...result, publications, recovered: resume ? false : result.recovered }, bytes, omitted: pubs.length - count };
}
