/**
 * Stream positions. A position is `<epoch>:<offset>`: the epoch names one continuous history of a
 * channel (it changes whenever history is lost, e.g. a memory engine restarting) and the offset
 * counts publications in that history from 1. Offset 0 means "before the first publication".
 * Several positions (one per channel of a multi-channel subscription) are joined with `,` in the
 * order the channels were requested; that form is used as SSE event id and long-poll cursor.
 */

/** One channel's position in its history. */
export interface StreamPosition {
  /** Short opaque string; never contains `:` or `,`. */
  readonly epoch: string;
  /** Offset of the last publication seen (0 = none). */
  readonly offset: number;
}

const EPOCH_RE = /^[0-9A-Za-z_-]{1,32}$/;

/** Format a position as `<epoch>:<offset>`. */
export function formatPosition(p: StreamPosition): string {
  return `${p.epoch}:${p.offset}`;
}

/** Parse `<epoch>:<offset>`; returns undefined when malformed. */
export function parsePosition(text: string): StreamPosition | undefined {
  const i = text.lastIndexOf(':');
  if (i <= 0) return undefined;
  const epoch = text.slice(0, i);
  const offText = text.slice(i + 1);
  if (!EPOCH_RE.test(epoch) || !/^\d{1,15}$/.test(offText)) return undefined;
  return { epoch, offset: Number(offText) };
}

/**
 * Parse a comma-joined list of positions for `count` channels. An empty element means "no
 * position" (undefined). Returns undefined when the list is malformed or has the wrong length.
 */
export function parsePositionList(text: string, count: number): Array<StreamPosition | undefined> | undefined {
  const parts = text.split(',');
  if (parts.length !== count) return undefined;
  const out: Array<StreamPosition | undefined> = [];
  for (const part of parts) {
    if (part === '') {
      out.push(undefined);
      continue;
    }
    const p = parsePosition(part);
    if (!p) return undefined;
    out.push(p);
  }
  return out;
}

/** Format a list of positions (undefined → empty element). */
export function formatPositionList(list: ReadonlyArray<StreamPosition | undefined>): string {
  return list.map((p) => (p ? formatPosition(p) : '')).join(',');
}
