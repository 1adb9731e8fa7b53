/**
 * Nchan message ids. One channel: `<unix-seconds>:<tag>`, the tag counting from 0 within one
 * second. Several channels (multiplexed): `<seconds>:<t1>,<t2>,…` with the tag of the channel
 * the message came from in `[ ]` and `-` for "no message yet" (-1). Over HTTP the id is split
 * into `Last-Modified` (the seconds) and `Etag` (the tags).
 */

/** A parsed message id: seconds and one tag per channel (-1 = none). */
export interface NchanMsgId {
  readonly time: number;
  readonly tags: readonly number[];
}

/** Thrown for a malformed id; answered with `400 Message ID invalid`. */
export class InvalidMessageIdError extends Error {
  override name = 'InvalidMessageIdError';
  constructor() {
    super('Message ID invalid');
  }
}

/** Nchan's limit on multiplexed channels. */
export const MAX_MULTIPLEX = 255;

/**
 * Parse the tag part for `count` channels: `5`, `[5]`, `-` for one channel; exactly `count`
 * comma-separated tags with exactly one bracketed for several. Throws InvalidMessageIdError.
 */
export function parseTags(text: string, count: number): number[] {
  const parts = text.split(',');
  if (parts.length > MAX_MULTIPLEX || parts.length !== count) throw new InvalidMessageIdError();
  let brackets = 0;
  const tags = parts.map((p) => {
    let t = p.trim();
    if (t.startsWith('[') && t.endsWith(']')) {
      brackets++;
      t = t.slice(1, -1);
    }
    if (t.includes('[') || t.includes(']')) throw new InvalidMessageIdError();
    if (t === '-' || t === '') return -1;
    // Like Nchan (atoi), digits are read leniently; anything else counts as 0.
    const n = Number.parseInt(t, 10);
    return Number.isNaN(n) ? 0 : Math.max(-1, n);
  });
  if (count > 1 && brackets !== 1) throw new InvalidMessageIdError();
  if (brackets > 1) throw new InvalidMessageIdError();
  return tags;
}

/** Parse a compound id `time:tags` for `count` channels; undefined when there is no `:`. */
export function parseCompoundId(text: string, count: number): NchanMsgId | undefined {
  const i = text.indexOf(':');
  if (i < 0) return undefined;
  const time = Number.parseInt(text.slice(0, i), 10);
  return { time: Number.isNaN(time) ? 0 : time, tags: parseTags(text.slice(i + 1), count) };
}

/** Format the tags of an id; `active` is the index to bracket (multiplexed only). */
export function formatTags(tags: readonly number[], active: number): string {
  if (tags.length === 1) return String(tags[0]);
  return tags.map((t, i) => (i === active ? `[${t}]` : t < 0 ? '-' : String(t))).join(',');
}

/** HTTP-date of unix seconds, as in `Last-Modified`. */
export function httpDate(seconds: number): string {
  return new Date(seconds * 1000).toUTCString();
}

/** Compare two (time, tag) pairs. */
export function compareIds(aTime: number, aTag: number, bTime: number, bTag: number): number {
  return aTime !== bTime ? aTime - bTime : aTag - bTag;
}
