/**
 * Transactions and group commit of the PostgreSQL IM store.
 *
 * `transaction` runs a function in a transaction on one pooled client, retried on a deadlock
 * or serialization failure; `storeError` is how pg errors reach callers of the store.
 *
 * Group commit: appends and acks queued in one event-loop turn commit
 * in one transaction (one WAL flush). Up to MAX_LANES batches commit at once, each on its own
 * pooled connection; their row locks, taken in id order (conversations, then users), keep seqs
 * gap-free and rule out deadlocks between them and between nodes.
 *
 * A batch first takes the fast path: one call of the schema's `herald_batch` function (one round
 * trip, no idempotency read, no savepoints). When a write cannot apply there (a duplicate client
 * id hits the unique index, an unknown user or conversation) or the batch holds a recall or edit,
 * it runs on the careful path, where each append reads its idempotency key and runs in a
 * savepoint so it fails alone.
 */
import type { Pool, PoolClient } from 'pg';
import { HeraldError } from '../core/errors.js';
import type { AckResult, AppendInput, AppendResult, StoredMessage } from '../core/im/store.js';
import { newMessageId } from './im-rows.js';
import { appendedMessage, changesTarget, duplicateAppend, recipientsOf } from './sql-append.js';

/** Attempts of a transaction that keeps failing with a deadlock or serialization failure. */
const MAX_ATTEMPTS = 8;
/** Upper bound of the random wait before a retry, ms (doubles per attempt from 5). */
const MAX_RETRY_WAIT_MS = 200;
/** SQLSTATEs worth retrying the whole transaction for: serialization_failure, deadlock_detected. */
const RETRYABLE = new Set(['40001', '40P01']);
/** SQLSTATE unique_violation. */
const UNIQUE_VIOLATION = '23505';

/** The SQLSTATE of a pg error, if any. */
function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && !code.startsWith('HERALD_') ? code : undefined;
}

/** Whether the error is worth retrying the whole transaction for. */
function retryable(err: unknown): boolean {
  return RETRYABLE.has(sqlState(err) ?? '');
}

/**
 * Whether a failed fast-path batch should be re-run on the careful path: one of its writes could
 * not apply (data or integrity error, or herald_batch's own HR001/HR002), as opposed to the
 * database being unavailable.
 */
function writeRejected(err: unknown): boolean {
  const state = sqlState(err instanceof HeraldError ? err.cause : err);
  return state !== undefined && /^(22|23|HR)[0-9A-Z]{3}$/.test(state);
}

/** A store error as callers see it: HeraldErrors as they are, anything else as HERALD_ERR_UNAVAILABLE. */
export function storeError(err: unknown): unknown {
  return err instanceof HeraldError ? err : new HeraldError('HERALD_ERR_UNAVAILABLE', 'IM store write failed', { cause: err });
}

/**
 * Run `fn` in a transaction on one client of `pool` and commit; on a deadlock or serialization
 * failure roll back and run it again (after a short random wait), up to MAX_ATTEMPTS times.
 * Other failures reject with `storeError`.
 */
export async function transaction<T>(pool: Pool, fn: (c: PoolClient) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (err) {
      throw storeError(err);
    }
    try {
      await client.query('BEGIN');
      const v = await fn(client);
      await client.query('COMMIT');
      return v;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (!retryable(err) || attempt >= MAX_ATTEMPTS) throw storeError(err);
    } finally {
      client.release();
    }
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(MAX_RETRY_WAIT_MS, 5 * 2 ** attempt)));
  }
}

/** Most group commits in flight per store (each on its own pooled connection). */
const MAX_LANES = 4;

/** A queued append: its input and the promise to settle after the batch commits. */
type QueuedAppend =
  | { readonly input: AppendInput; readonly ack?: undefined; readonly resolve: (r: AppendResult) => void; readonly reject: (e: unknown) => void }
  | {
      readonly input?: undefined;
      readonly ack: { readonly user: string; readonly seq: number };
      readonly resolve: (r: AckResult) => void;
      readonly reject: (e: unknown) => void;
    };

/** How one write of a batch ends, settled once the batch commits. */
type Settled = { readonly ok: true; readonly value: AppendResult | AckResult } | { readonly ok: false; readonly error: unknown };

/** The rows a batch writes, sorted (the lock order): its conversations, and the users of its inboxes and acks. */
function lockSets(batch: readonly QueuedAppend[]): { convs: string[]; users: string[] } {
  return {
    convs: [...new Set(batch.flatMap((q) => (q.input ? [q.input.conversation] : [])))].sort(),
    users: [...new Set(batch.flatMap((q) => (q.input ? q.input.recipients : [q.ack.user])))].sort(),
  };
}

/** What the group commit needs from the store. */
export interface PgBatchSteps {
  /** The store's pool; still open while a batch commits (the store's close() drains the lanes first). */
  pool(): Pool;
  /** The quoted schema and a dot (`"herald".`), prefix of table and function names. */
  readonly t: string;
  /** The careful path's append: the append rule with its idempotency read (sql-append.ts). */
  appendOne(c: PoolClient, input: AppendInput): Promise<AppendResult>;
  /** An ack inside the batch's transaction. */
  ackOn(c: PoolClient, user: string, seq: number): Promise<AckResult>;
  /** The message of `sender` with `clientId`, if one was stored. */
  byClient(c: PoolClient, sender: string, clientId: string): Promise<StoredMessage | undefined>;
}

/** The append and ack queue of one store, committed in groups. */
export class PgGroupCommit {
  readonly #steps: PgBatchSteps;
  readonly #maxLanes: number;
  #queue: QueuedAppend[] = [];
  /** Group-commit lanes running (each commits one batch at a time). */
  readonly #lanes = new Set<Promise<void>>();
  /** A lane is waiting for the end of the event-loop turn to take the queue. */
  #gathering = false;

  /** At most `poolSize - 1` lanes (one connection stays for reads and other writes), at most MAX_LANES. */
  constructor(steps: PgBatchSteps, poolSize: number) {
    this.#steps = steps;
    this.#maxLanes = Math.min(MAX_LANES, Math.max(1, poolSize - 1));
  }

  /** Queue an append; settles once its batch commits. */
  append(input: AppendInput): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      this.#queue.push({ input, resolve, reject });
      this.#kick();
    });
  }

  /** Queue an ack; settles once its batch commits. */
  ack(user: string, seq: number): Promise<AckResult> {
    return new Promise<AckResult>((resolve, reject) => {
      this.#queue.push({ ack: { user, seq }, resolve, reject });
      this.#kick();
    });
  }

  /** Resolves once every queued write has committed (or failed). */
  async drain(): Promise<void> {
    while (this.#lanes.size > 0) await Promise.all(this.#lanes);
  }

  /** Make sure a lane will take the queue: unless one is already gathering, start one (up to the lane limit). */
  #kick(): void {
    if (this.#gathering || this.#lanes.size >= this.#maxLanes) return;
    const lane: Promise<void> = this.#lane().finally(() => {
      this.#lanes.delete(lane);
      if (this.#queue.length > 0) this.#kick();
    });
    this.#lanes.add(lane);
  }

  /** Take what the event-loop turn queued and commit it; go on while no other lane gathers. */
  async #lane(): Promise<void> {
    for (;;) {
      this.#gathering = true;
      await new Promise((r) => setImmediate(r));
      this.#gathering = false;
      if (this.#queue.length === 0) return;
      const batch = this.#queue;
      this.#queue = [];
      this.#kick(); // the next batch gathers (in another lane) while this one commits
      await this.#commitBatch(batch);
      if (this.#gathering) return;
    }
  }

  /** Commit a batch: the fast path, else (a write could not apply there, or a recall or edit) the careful path. */
  async #commitBatch(batch: QueuedAppend[]): Promise<void> {
    let results: Settled[] | undefined;
    try {
      if (batch.every((q) => !q.input || !changesTarget(q.input))) results = await this.#commitFast(batch);
      results ??= await this.#commitCareful(batch);
    } catch (err) {
      for (const q of batch) q.reject(storeError(err));
      return;
    }
    batch.forEach((q, i) => {
      const r = results![i]!;
      if (!r.ok) q.reject(r.error);
      else if (q.input) q.resolve(r.value as AppendResult);
      else q.resolve(r.value as AckResult);
    });
  }

  /**
   * The fast path: the whole batch in one call of `herald_batch` (the append rule of
   * sql-append.ts for plain appends; CHANGE TOGETHER); undefined when a write could not apply
   * there (the function raised, so nothing was applied).
   */
  async #commitFast(batch: QueuedAppend[]): Promise<Settled[] | undefined> {
    const now = Date.now();
    const { convs, users } = lockSets(batch);
    /** Per append: its message as stored (seq filled in from the answer) and its distinct recipients. */
    const appends: Array<{ message: StoredMessage; rcpt: string[] }> = [];
    const ops = batch.map((q, i) => {
      if (!q.input) return { user: q.ack.user, seq: q.ack.seq };
      const m = q.input;
      const id = newMessageId(now);
      const rcpt = [...recipientsOf(m)];
      appends[i] = { message: appendedMessage(m, id, 0, now), rcpt };
      return { id, conv: m.conversation, sender: m.sender, cid: m.clientId ?? null, kind: m.kind, payload: m.payload, target: m.target ?? null, rcpt };
    });
    let out: Array<{ seq: number; inbox: Array<[string, number]> } | { acked: number; delivered: Array<[string, number]> }>;
    try {
      out = await transaction(this.#steps.pool(), async (c) => {
        const { rows } = await c.query<{ r: typeof out }>(`SELECT ${this.#steps.t}herald_batch($1, $2, $3, $4) AS r`, [convs, users, JSON.stringify(ops), now]);
        return rows[0]!.r;
      });
    } catch (err) {
      if (writeRejected(err)) return undefined;
      throw err;
    }
    return out.map((r, i): Settled => {
      if ('acked' in r)
        return { ok: true, value: { acked: Number(r.acked), delivered: r.delivered.map(([conversation, seq]) => ({ conversation, seq: Number(seq) })) } };
      const inbox = new Map(r.inbox.map(([user, seq]) => [user, Number(seq)]));
      const { message, rcpt } = appends[i]!;
      return {
        ok: true,
        value: { message: { ...message, seq: Number(r.seq) }, inbox: rcpt.map((user) => ({ user, seq: inbox.get(user)! })), duplicate: false },
      };
    });
  }

  /** The careful path: one transaction, the batch's rows locked in order, each write in its own savepoint. */
  async #commitCareful(batch: QueuedAppend[]): Promise<Settled[]> {
    const steps = this.#steps;
    return transaction(steps.pool(), async (c) => {
      const results: Settled[] = [];
      const { convs, users } = lockSets(batch);
      await c.query(`SELECT id FROM ${steps.t}im_conversations WHERE id = ANY($1) ORDER BY id FOR UPDATE`, [convs]);
      if (users.length) await c.query(`SELECT id FROM ${steps.t}im_users WHERE id = ANY($1) ORDER BY id FOR UPDATE`, [users]);
      for (const q of batch) {
        await c.query('SAVEPOINT op');
        try {
          results.push({ ok: true, value: q.input ? await steps.appendOne(c, q.input) : await steps.ackOn(c, q.ack.user, q.ack.seq) });
          await c.query('RELEASE SAVEPOINT op');
        } catch (err) {
          // A deadlock aborts the whole transaction's locks: retry all of it, not this append.
          if (retryable(err)) throw err;
          await c.query('ROLLBACK TO SAVEPOINT op');
          await c.query('RELEASE SAVEPOINT op');
          results.push(q.input ? await this.#afterFailedAppend(c, q.input, err) : { ok: false, error: storeError(err) });
        }
      }
      return results;
    });
  }

  /**
   * What a failed append settles with: a duplicate result when it lost a race on its idempotency
   * key against another node's commit, else the error (HeraldErrors as they are).
   */
  async #afterFailedAppend(c: PoolClient, input: AppendInput, err: unknown): Promise<Settled> {
    if (sqlState(err) === UNIQUE_VIOLATION && input.clientId !== undefined) {
      const dup = await this.#steps.byClient(c, input.sender, input.clientId);
      if (dup) return { ok: true, value: duplicateAppend(dup) };
    }
    return { ok: false, error: storeError(err) };
  }
}
