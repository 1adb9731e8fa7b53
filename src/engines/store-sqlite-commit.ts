/**
 * Group commit of the SQLite IM store: every write arriving in the same event-loop turn is
 * applied in one transaction; a failing write is undone alone and does not undo the others (see
 * `flush`). With `durable` set, a write's promise resolves only once the WAL holding it is on
 * disk: SQLite runs with `synchronous=NORMAL` (no fsync inside COMMIT, which would block the event
 * loop for milliseconds) and the WAL file is fsynced here, on libuv's thread pool, after each
 * group commit; group commits that finish while an fsync is in flight share the next one.
 *
 * Several processes (workers of one host) may share the file: a group commit never waits on the
 * event loop for another process's write lock. `BEGIN IMMEDIATE` is tried without SQLite's busy
 * handler (which would sleep on the event loop); while another process holds the lock the queue
 * stays open, writes arriving meanwhile join the same group, and the lock is tried again from a
 * timer (1 ms, doubling up to 8 ms). A group that has not got the lock within `lockWaitMs` (default
 * 5 s, SQLite's busy timeout before) fails with HERALD_ERR_UNAVAILABLE.
 */
import { closeSync, fdatasync, fdatasyncSync, openSync } from 'node:fs';
import { HeraldError } from '../core/errors.js';

/** Longest a group of writes waits for another process's write lock before failing, ms. */
export const DEFAULT_LOCK_WAIT_MS = 5_000;
/** First and longest pause between two tries of the write lock, ms. */
const LOCK_RETRY_MIN_MS = 1;
const LOCK_RETRY_MAX_MS = 8;
/** The busy timeout of the connection's other statements (reads, close), ms. */
export const BUSY_TIMEOUT_MS = 5_000;

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
  readonly #tx: { begin: Stmt; commit: Stmt; rollback: Stmt; savepoint: Stmt; release: Stmt; rollbackTo: Stmt; group: Stmt; rollbackGroup: Stmt };
  readonly #lockWaitMs: number;
  #queue: Array<Op<C>> = [];
  #scheduled = false;
  /** A retry of the write lock is pending (another process holds it). */
  #lockTimer: NodeJS.Timeout | undefined;
  /** When the queued group first found the lock taken (ms, performance.now()); undefined when not waiting. */
  #waitingSince: number | undefined;
  #retryMs = LOCK_RETRY_MIN_MS;
  #detached = false;
  /** Descriptor of the WAL file, opened at the first fsync. */
  #walFd: number | undefined;
  /** Committed writes waiting for the next WAL fsync. */
  #unsynced: Array<{ op: Op<C>; ok: boolean; v: unknown }> = [];
  /** Resolves when the WAL fsync in flight (if any) has finished. */
  #syncing: Promise<void> | undefined;

  /**
   * `walPath`: the WAL to fsync before answering a write (`<file>-wal`), or undefined to answer at
   * commit. `lockWaitMs`: longest a group waits for another process's write lock (default 5 s).
   */
  constructor(db: Db, ctx: C, walPath: string | undefined, lockWaitMs = DEFAULT_LOCK_WAIT_MS) {
    this.#db = db;
    this.#ctx = ctx;
    this.#walPath = walPath;
    this.#lockWaitMs = lockWaitMs;
    this.#tx = {
      begin: db.prepare('BEGIN IMMEDIATE'),
      commit: db.prepare('COMMIT'),
      rollback: db.prepare('ROLLBACK'),
      savepoint: db.prepare('SAVEPOINT op'),
      group: db.prepare('SAVEPOINT grp'),
      rollbackGroup: db.prepare('ROLLBACK TO grp'),
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
   * one throws, the group is rolled back (to a savepoint taken after BEGIN, so the write lock is
   * kept) and re-run with each write in its own savepoint, so the failing write is undone alone
   * (savepoints cost ~20 % of a batch, and failing writes are rare: bad input). When another
   * process holds the write lock, nothing is committed now: the queue waits for a retry (see the
   * module's comment), or fails once the wait exceeds its bound.
   */
  flush(): void {
    this.#scheduled = false;
    if (this.#queue.length === 0 || this.#detached || this.#lockTimer) return;
    let locked: boolean;
    try {
      locked = this.#lock();
    } catch (err) {
      this.#fail(this.#queue, new HeraldError('HERALD_ERR_UNAVAILABLE', 'IM store write failed', { cause: err }));
      return;
    }
    if (!locked) {
      this.#waitForLock();
      return;
    }
    const batch = this.#queue;
    this.#queue = [];
    let results: Outcome[];
    try {
      results = this.#commit(batch);
    } catch (err) {
      if (this.#db.inTransaction) this.#tx.rollback.run();
      this.#fail(batch, new HeraldError('HERALD_ERR_UNAVAILABLE', 'IM store write failed', { cause: err }));
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

  /**
   * Commit what is queued (waiting, within the bound, for another process's write lock), wait for
   * the fsyncs in flight, then sync and close the WAL descriptor; later flushes do nothing.
   */
  async close(): Promise<void> {
    this.flush();
    while (this.#queue.length > 0 && this.#lockTimer) await new Promise((r) => setTimeout(r, LOCK_RETRY_MAX_MS));
    while (this.#syncing) await this.#syncing;
    if (this.#walFd !== undefined) {
      fdatasyncSync(this.#walFd);
      closeSync(this.#walFd);
      this.#walFd = undefined;
    }
    this.#detached = true;
  }

  /**
   * Take the write lock (BEGIN IMMEDIATE) without SQLite's busy handler: true when taken, false
   * when another process holds it. Other failures throw.
   */
  #lock(): boolean {
    this.#db.pragma('busy_timeout = 0');
    try {
      this.#tx.begin.run();
      return true;
    } catch (err) {
      if ((err as { code?: unknown }).code === 'SQLITE_BUSY') return false;
      throw err;
    } finally {
      this.#db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    }
  }

  /** The lock is taken by another process: try again from a timer, or fail the queue past the bound. */
  #waitForLock(): void {
    const now = performance.now();
    this.#waitingSince ??= now;
    if (now - this.#waitingSince >= this.#lockWaitMs) {
      const waited = Math.round(now - this.#waitingSince);
      this.#fail(this.#queue, new HeraldError('HERALD_ERR_UNAVAILABLE', `IM store busy: another process held the write lock for ${waited} ms`));
      return;
    }
    const delay = this.#retryMs;
    this.#retryMs = Math.min(LOCK_RETRY_MAX_MS, delay * 2);
    this.#lockTimer = setTimeout(() => {
      this.#lockTimer = undefined;
      this.flush();
    }, delay);
  }

  /** Reject every write of `ops` (taken off the queue if it is the queue) and reset the lock wait. */
  #fail(ops: Array<Op<C>>, err: HeraldError): void {
    if (ops === this.#queue) this.#queue = [];
    for (const op of ops) op.reject(err);
    this.#waitingSince = undefined;
    this.#retryMs = LOCK_RETRY_MIN_MS;
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
   * Run a batch in the transaction `#lock` began, and commit it: first back to back; if a write
   * throws, the group is rolled back to its savepoint and re-run with each write in its own
   * savepoint, recording each write's outcome. Throws when the transaction itself fails.
   */
  #commit(batch: ReadonlyArray<Op<C>>): Outcome[] {
    const tx = this.#tx;
    const ctx = this.#ctx;
    this.#waitingSince = undefined;
    this.#retryMs = LOCK_RETRY_MIN_MS;
    tx.group.run();
    let results: Outcome[] | undefined = [];
    try {
      for (const op of batch) results.push({ ok: true, v: op.fn(ctx) });
    } catch {
      tx.rollbackGroup.run();
      results = undefined;
    }
    if (results) {
      tx.commit.run();
      return results;
    }
    results = [];
    for (const op of batch) {
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
