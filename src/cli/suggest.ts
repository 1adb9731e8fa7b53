/**
 * "Did you mean …?" for mistyped flags, config keys and environment variables: the closest known
 * name by edit distance, when it is close enough to be a likely typo.
 */

/** Levenshtein distance between two strings (insert, delete, substitute: cost 1 each). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * The known name closest to `given` (case-insensitive), or undefined when none is within a
 * third of its length (at least 2 edits): a suggestion far off helps nobody.
 */
export function closest(given: string, known: Iterable<string>): string | undefined {
  const g = given.toLowerCase();
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(g.length / 3)) + 1;
  for (const k of known) {
    const d = distance(g, k.toLowerCase());
    if (d < bestDistance) {
      best = k;
      bestDistance = d;
    }
  }
  return best;
}

/** ` (did you mean X?)` when a close name exists, else "". */
export function didYouMean(given: string, known: Iterable<string>): string {
  const k = closest(given, known);
  return k === undefined ? '' : ` (did you mean ${k}?)`;
}
