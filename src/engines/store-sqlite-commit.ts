/**
 * Group commit of the SQLite IM store: every write arriving in the same event-loop turn is
 * applied in one transaction; a failing write is undone alone and does not undo the others (see
 * `flush`). With `durable` set, a write's promise resolves only once the WAL holding it is on
 * disk: SQLite runs with `synchronous=NORMAL` (no fsync inside COMMIT, which would block the event
 * loop for milliseconds) and the WAL file is fsynced here, on libuv's thread pool, after each
 * group commit; group commits that finish while an fsync is in flight share the next one.
 */
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
import { HeraldError } from '../core/errors.js';

/** A prepared statement (the subset of better-sqlite3 used; its package ships no types and @types is not a dependency). */
export interface Stmt {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}

/** A database connection (the subset of better-sqlite3 used). */
export interface Db {
  prepare(sql: string): Stmt;
  pragma(text: string): unknown;
  exec(sql: string): void;
  close(): void;
  readonly inTransaction: boolean;
}

/** A queued write: runs with the store's context `C` inside the group's transaction. */
interface Op<C> {
  readonly fn: (ctx: C) => unknown;
  readonly resolve: (v: unknown) => void;
  readonly reject: (e: unknown) => void;
  /** Answered only once the WAL holding it is on disk (when the store syncs at all). */
  readonly synced: boolean;
}

/** How one write of a batch ended. */
interface Outcome {
  readonly ok: boolean;
  readonly v: unknown;
}

/** Queues writes and commits them in groups; `C` is what each write runs with (the store's statements). */
export class SqliteGroupCommit<C> {
  readonly #db: Db;
  readonly #ctx: C;
  /** The WAL file fsynced after each commit; undefined when writes resolve at commit. */
  readonly #walPath: string | undefined;
  readonly #tx: { begin: Stmt; commit: Stmt; rollback: Stmt; savepoint: Stmt; release: Stmt; rollbackTo: Stmt };
  #queue: Array<Op<C>> = [];
  #scheduled = false;
  #detached = false;
  /** Descriptor of the WAL file, opened at the first fsync. */
  #walFd: number | undefined;
  /** Committed writes waiting for the next WAL fsync. */
  #unsynced: Array<{ op: Op<C>; ok: boolean; v: unknown }> = [];
  /** Resolves when the WAL fsync in flight (if any) has finished. */
  #syncing: Promise<void> | undefined;

  /** `walPath`: the WAL to fsync before answering a write (`<file>-wal`), or undefined to answer at commit. */
  constructor(db: Db, ctx: C, walPath: string | undefined) {
    this.#db = db;
    this.#ctx = ctx;
    this.#walPath = walPath;
    this.#tx = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT op'),
      release: db.prepare('RELEASE op'),
      rollbackTo: db.prepare('ROLLBACK TO op'),
    };
  }

  /**
   * Queue a write for the next group commit; settles with what `fn` returned or threw, once
   * committed and, unless `synced` is false, once the WAL holding it is on disk. A write answered
   * at commit is visible to every read at once and becomes durable with the next synced write
   * (the WAL is written and synced in order), or on close.
   */
  write<T>(fn: (ctx: C) => T, synced = true): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ fn, resolve: resolve as (v: unknown) => void, reject, synced });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Commit every queued write in one transaction. Fast path: the writes run back to back; if
   * one throws, the transaction is rolled back and the batch is re-run with each write in its
   * own savepoint, so the failing write is undone alone (savepoints cost ~20 % of a batch, and
   * failing writes are rare: bad input).
   */
  flush(): void {
    this.#scheduled = false;
    const batch = this.#queue;
    if (batch.length === 0 || this.#detached) return;
    this.#queue = [];
    let results: Outcome[];
    try {
      results = this.#commit(batch, false) ?? this.#commit(batch, true)!;
    } catch (err) {
      if (this.#db.inTransaction) this.#tx.rollback.run();
      for (const op of batch) op.reject(new HeraldError('HERALD_ERR_UNAVAILABLE', 'IM store write failed', { cause: err }));
      return;
    }
    if (this.#walPath === undefined) {
      batch.forEach((op, i) => (results[i]!.ok ? op.resolve(results[i]!.v) : op.reject(results[i]!.v)));
      return;
    }
    let unsynced = false;
    batch.forEach((op, i) => {
      const r = results[i]!;
      if (op.synced) {
        this.#unsynced.push({ op, ...r });
        unsynced = true;
      } else if (r.ok) op.resolve(r.v);
      else op.reject(r.v);
    });
    if (unsynced && !this.#syncing) this.#sync(this.#walPath);
  }

  /** Commit what is queued, wait for the fsyncs in flight, then sync and close the WAL descriptor; later flushes do nothing. */
  async close(): Promise<void> {
    this.flush();
    while (this.#syncing) await this.#syncing;
    if (this.#walFd !== undefined) {
      fdatasyncSync(this.#walFd);
      closeSync(this.#walFd);
      this.#walFd = undefined;
    }
    this.#detached = true;
  }

  /** Fsync the WAL off the event loop, then answer every write committed before the fsync began. */
  #sync(walPath: string): void {
    const waiting = this.#unsynced;
    this.#unsynced = [];
    let fd: number;
    try {
      // The WAL exists from the first commit until the last connection closes.
      fd = this.#walFd ??= openSync(walPath, 'r');
    } catch (err) {
      for (const w of waiting) w.op.reject(new HeraldError('HERALD_ERR_UNAVAILABLE', 'IM store sync failed', { cause: err }));
      return;
    }
    this.#syncing = new Promise<void>((done) => {
      fdatasync(fd, (err) => {
        for (const w of waiting) {
          if (err) w.op.reject(new HeraldError('HERALD_ERR_UNAVAILABLE', 'IM store sync failed', { cause: err }));
          else if (w.ok) w.op.resolve(w.v);
          else w.op.reject(w.v);
        }
        this.#syncing = undefined;
        if (this.#unsynced.length > 0) this.#sync(walPath);
        done();
      });
    });
  }

  /**
   * Run a batch in one transaction. Without savepoints, returns undefined (after rolling back)
   * as soon as a write throws; with them, records each write's outcome. Throws when the
   * transaction itself fails.
   */
  #commit(batch: ReadonlyArray<Op<C>>, savepoints: boolean): Outcome[] | undefined {
    const tx = this.#tx;
    const ctx = this.#ctx;
    const results: Outcome[] = [];
    tx.begin.run();
    for (const op of batch) {
      if (!savepoints) {
        try {
          results.push({ ok: true, v: op.fn(ctx) });
        } catch {
          tx.rollback.run();
          return undefined;
        }
        continue;
      }
      tx.savepoint.run();
      try {
        results.push({ ok: true, v: op.fn(ctx) });
        tx.release.run();
      } catch (err) {
        tx.rollbackTo.run();
        tx.release.run();
        results.push({ ok: false, v: err });
      }
    }
    tx.commit.run();
    return results;
  }
}
