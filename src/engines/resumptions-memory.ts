/**
 * In-process resumption store: one process is the whole cluster, so a `live` record lives as long
 * as its session (its writer is this process) and only records of other states expire, `ttlMs`
 * after their last write (checked when read, and swept when written).
 */
import type { ResumptionClaim, ResumptionRecord, ResumptionStore } from '../core/resumptions.js';

interface Entry {
  record: ResumptionRecord;
  /** ms since the epoch; Infinity while live. */
  expiresAt: number;
  claimedBy: string | undefined;
}

/** Writes between two sweeps of expired records. */
const SWEEP_EVERY = 1024;

/** The in-memory resumption store. */
export class MemoryResumptions implements ResumptionStore {
  readonly #entries = new Map<string, Entry>();
  #writes = 0;

  async put(id: string, record: ResumptionRecord, ttlMs: number): Promise<boolean> {
    const now = Date.now();
    if (++this.#writes % SWEEP_EVERY === 0) for (const [k, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(k);
    const old = this.#live(id, now);
    if (old && old.record.node !== record.node && old.claimedBy !== record.node) return false;
    const claimedBy = old && old.record.node === record.node ? old.claimedBy : undefined;
    this.#entries.set(id, { record, expiresAt: record.state === 'live' ? Infinity : now + ttlMs, claimedBy });
    return true;
  }

  async claim(id: string, user: string, node: string): Promise<ResumptionClaim> {
    const e = this.#live(id, Date.now());
    if (!e || e.record.user !== user) return { type: 'unknown' };
    if (e.record.state === 'ended') return { type: 'ended', record: e.record };
    e.claimedBy = node;
    return { type: 'claimed', record: e.record };
  }

  async get(id: string): Promise<ResumptionRecord | undefined> {
    return this.#live(id, Date.now())?.record;
  }

  async close(): Promise<void> {
    this.#entries.clear();
  }

  #live(id: string, now: number): Entry | undefined {
    const e = this.#entries.get(id);
    if (e && e.expiresAt <= now) {
      this.#entries.delete(id);
      return undefined;
    }
    return e;
  }
}
