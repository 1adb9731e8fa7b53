/**
 * Shared history reads for subscriptions that start at once. When many clients of one channel
 * (re)subscribe within the same event-loop turn — a reconnect storm after a node dies, or a
 * crowd joining one channel — each would read the broker's history on its own, the same data
 * each time. Reads of one channel asked for in one turn are merged into one broker read issued
 * at the end of that turn (`setImmediate`), and each caller gets the answer its own read would
 * have had.
 *
 * Guarantee: every caller's read is issued after the call was made, so a caller that joined
 * the hub before calling sees every publication that the hub did not deliver to it (the same
 * ordering as a read of its own). Results are exact, never approximated: a caller resuming
 * after a later offset than the merged read gets the publications after its own offset and its
 * own `recovered` verdict; when the merged read was cut by `limit` or found another epoch, the
 * callers whose answer would differ read on their own.
 */
import type { StreamPosition } from '../protocol/position.js';
import type { Broker, HistoryResult } from './broker.js';

/** One caller waiting for a merged read. */
interface Waiter {
  readonly since: StreamPosition | undefined;
  readonly resolve: (res: HistoryResult) => void;
  readonly reject: (err: unknown) => void;
}

/** Reads of one channel (and one `since` epoch, or the current position only) asked for in one turn. */
interface Batch {
  readonly channel: string;
  readonly limit: number;
  readonly waiters: Waiter[];
}

/** Merges the history reads that start subscriptions (see the file comment). */
export class SharedHistoryReads {
  readonly #broker: Broker;
  readonly #pending = new Map<string, Batch>();
  #scheduled = false;

  constructor(broker: Broker) {
    this.#broker = broker;
  }

  /** Publications after `since` (at most `limit`), as `broker.history(channel, {since, limit})` answers. */
  since(channel: string, since: StreamPosition, limit: number): Promise<HistoryResult> {
    return this.#join(`${since.epoch}\0${limit}\0${channel}`, channel, limit, since);
  }

  /** The channel's current position, as `broker.history(channel, {limit: 0})` answers. */
  position(channel: string): Promise<HistoryResult> {
    return this.#join(`\0\0${channel}`, channel, 0, undefined);
  }

  #join(key: string, channel: string, limit: number, since: StreamPosition | undefined): Promise<HistoryResult> {
    return new Promise<HistoryResult>((resolve, reject) => {
      let batch = this.#pending.get(key);
      if (!batch) {
        batch = { channel, limit, waiters: [] };
        this.#pending.set(key, batch);
      }
      batch.waiters.push({ since, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const batches = [...this.#pending.values()];
    this.#pending.clear();
    for (const batch of batches) void this.#read(batch);
  }

  async #read(batch: Batch): Promise<void> {
    const { channel, limit, waiters } = batch;
    // The earliest offset asked for: its answer holds every later caller's publications.
    let first = waiters[0]!.since;
    for (const w of waiters) if (w.since && first && w.since.offset < first.offset) first = w.since;
    let res: HistoryResult;
    try {
      res = await this.#broker.history(channel, { since: first, limit });
    } catch (err) {
      for (const w of waiters) w.reject(err);
      return;
    }
    // Complete up to the current position: every later offset's answer is a suffix of it.
    const last = res.publications.at(-1);
    const complete = first === undefined || (res.position.epoch === first.epoch && (last === undefined ? true : last.offset >= res.position.offset));
    for (const w of waiters) {
      if (w.since === first || !w.since || !first) w.resolve(res);
      else if (complete) w.resolve({ ...res, publications: res.publications.filter((p) => p.offset > w.since!.offset) });
      else this.#broker.history(channel, { since: w.since, limit }).then(w.resolve, w.reject);
    }
  }
}
