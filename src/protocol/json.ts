/**
 * JSON from peers. `JSON.parse` copes with any nesting, but everything that later walks the value
 * recursively (`JSON.stringify` of a webhook batch, a stored IM payload, a history reply) overflows
 * the stack on deep input. So every front parses peer JSON here and refuses nesting deeper than
 * `MAX_JSON_DEPTH`: what is accepted can always be serialized again.
 */

/** Deepest nesting of arrays and objects accepted in JSON from a client, publisher or backend. */
export const MAX_JSON_DEPTH = 64;

/** Outcome of `parsePeerJson`: the value, or why it was refused. */
export type PeerJson = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly reason: 'syntax' | 'depth' };

/**
 * Whether the arrays and objects of JSON `text` nest deeper than `max`. One pass over the text,
 * skipping string contents; no recursion, so it is safe on any input. Meaningful for valid JSON.
 */
export function jsonDepthExceeds(text: string, max: number = MAX_JSON_DEPTH): boolean {
  // Nesting deeper than `max` needs more than `max` characters.
  if (text.length <= max) return false;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/** Parse JSON `text` from a peer: refused when it is not JSON or nests deeper than `max`. */
export function parsePeerJson(text: string, max: number = MAX_JSON_DEPTH): PeerJson {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'syntax' };
  }
  if (jsonDepthExceeds(text, max)) return { ok: false, reason: 'depth' };
  return { ok: true, value };
}
