/**
 * The PostgreSQL IM store (cluster): every node opens the same database and schema, `pg` loaded
 * lazily on `open()`. Transactions run at READ COMMITTED and serialise what must be serialised
 * with row locks: an append locks its conversation row, then its recipients' user rows (each set
 * in id order, conversations before users, so two nodes never wait on each other in a cycle);
 * a deadlock or serialization failure retries the whole transaction (store-postgres-commit.ts).
 * Appends and acks go through a group commit (store-postgres-commit.ts): those queued in one
 * event-loop turn commit in one transaction, and one failing append does not undo the others.
 * Other writes run in their own transaction. Reads run directly on the pool and see every write
 * whose promise has resolved, on this node or any other.
 *
 * `open()` creates and upgrades the schema first (store-postgres-migrations.ts).
 */
import type { Pool, PoolClient, PoolConfig } from 'pg';
import { DEFAULT_DATABASE_POOL_SIZE, DEFAULT_DATABASE_SCHEMA } from '../core/config.js';
import { HeraldError, InvalidArgumentError } from '../core/errors.js';
import type {
  AckResult,
  AppendInput,
  AppendResult,
  ConversationKind,
  ConversationRecord,
  ConversationSummary,
  ImStore,
  InboxCursor,
  InboxEntry,
  InviteRecord,
  MemberRecord,
  MemberRole,
  StoredMessage,
  UserRecord,
} from '../core/im/store.js';
import { migrate, quoteIdent } from './store-postgres-migrations.js';
import { type ConvRow, type MessageRow, newMessageId, toConv, toMessage } from './im-rows.js';
import { appendedMessage, changesTarget, checkEditTarget, duplicateAppend, recipientsOf, unknownConversation, unknownRecipient } from './sql-append.js';
import { PgGroupCommit, storeError, transaction } from './store-postgres-commit.js';

/** OID of int8: parsed to a JS number (seqs and ms times stay far below 2^53). */
const INT8_OID = 20;

/** Options of the PostgreSQL store. */
export interface PostgresStoreOptions {
  /** Connection URL, e.g. `postgres://user@127.0.0.1:5432/herald`. */
  readonly url: string;
  /** Schema holding the tables (created when missing). Default `herald`. */
  readonly schema?: string;
  /** Most connections this store holds open. Default 10. */
  readonly poolSize?: number;
}

interface MemberRow {
  user_id: string;
  role: string;
  joined_at: number;
  read_seq: number;
  delivered_seq: number;
  joined_seq: number;
}

const MESSAGE_COLS = 'id, conversation, seq, sender, kind, payload, target, time, edited_at, recalled';
const CONV_COLS = 'id, kind, title, created_at, seq, member_count';
const MEMBER_COLS = 'user_id, role, joined_at, joined_seq, read_seq, delivered_seq';

function toMember(r: MemberRow): MemberRecord {
  return { user: r.user_id, role: r.role as MemberRole, joinedAt: r.joined_at, joinedSeq: r.joined_seq, readSeq: r.read_seq, deliveredSeq: r.delivered_seq };
}

/** The PostgreSQL implementation of ImStore. */
export class PostgresImStore implements ImStore {
  readonly #url: string;
  readonly #schema: string;
  readonly #poolSize: number;
  /** `$S.` prefix of every table name. */
  readonly #t: string;
  #pool: Pool | undefined;
  #opening: Promise<void> | undefined;
  #closed = false;
  /** Appends and acks, committed in groups. */
  readonly #commits: PgGroupCommit;

  /** Throws InvalidArgumentError (HERALD_ERR_BAD_REQUEST) on an empty URL or schema, or a pool size below 1. */
  constructor(options: PostgresStoreOptions) {
    this.#url = options.url;
    this.#schema = options.schema ?? DEFAULT_DATABASE_SCHEMA;
    this.#poolSize = options.poolSize ?? DEFAULT_DATABASE_POOL_SIZE;
    if (!this.#url || !this.#schema || !Number.isInteger(this.#poolSize) || this.#poolSize < 1) {
      throw new InvalidArgumentError('HERALD_ERR_BAD_REQUEST', 'PostgresImStore needs a url, a schema and a poolSize >= 1');
    }
    this.#t = `${quoteIdent(this.#schema)}.`;
    this.#commits = new PgGroupCommit(
      {
        pool: () => {
          // close() ends the pool only after the queue is empty, so it is there while a batch commits.
          if (!this.#pool) throw new HeraldError('HERALD_ERR_UNAVAILABLE', 'IM store not open');
          return this.#pool;
        },
        t: this.#t,
        appendOne: (c, input) => this.#appendOne(c, input),
        ackOn: (c, user, seq) => this.#ackOn(c, user, seq),
        byClient: (c, sender, clientId) => this.#byClient(c, sender, clientId),
      },
      this.#poolSize,
    );
  }

  /** The schema this store uses. */
  get schema(): string {
    return this.#schema;
  }

  /**
   * Connect and bring the schema to the newest migration (see the module comment). Idempotent;
   * after a failure (HERALD_ERR_UNAVAILABLE: database unreachable) the next call tries again.
   */
  open(): Promise<void> {
    this.#opening ??= this.#open().catch((err: unknown) => {
      this.#opening = undefined;
      throw err;
    });
    return this.#opening;
  }

  async #open(): Promise<void> {
    const pg = ((await import('pg')) as unknown as { default: typeof import('pg') }).default;
    const config: PoolConfig = {
      connectionString: this.#url,
      max: this.#poolSize,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    };
    const pool = new pg.Pool(config);
    // An idle client losing its connection must not crash the process; the pool replaces it.
    pool.on('error', () => undefined);
    try {
      await migrate(pool, this.#schema);
    } catch (err) {
      await pool.end();
      throw err instanceof HeraldError ? err : new HeraldError('HERALD_ERR_UNAVAILABLE', 'IM store open failed', { cause: err });
    }
    this.#pool = pool;
  }

  /** Wait for queued appends to commit, then end the pool. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#opening) await this.#opening.catch(() => undefined);
    await this.#commits.drain();
    await this.#pool?.end();
    this.#pool = undefined;
  }

  /** The open pool; throws HERALD_ERR_UNAVAILABLE when the store is not open (or closed). */
  #requireOpen(): Pool {
    if (!this.#pool || this.#closed) throw new HeraldError('HERALD_ERR_UNAVAILABLE', this.#closed ? 'IM store closed' : 'IM store not open');
    return this.#pool;
  }

  /** Run a read on the pool. */
  async #rows<R>(sql: string, params: unknown[]): Promise<R[]> {
    try {
      return (await this.#requireOpen().query(sql, params)).rows as R[];
    } catch (err) {
      throw storeError(err);
    }
  }

  /** Run `fn` in a transaction (retried on deadlocks and serialization failures, store-postgres-commit.ts). */
  #tx<T>(fn: (c: PoolClient) => Promise<T>): Promise<T> {
    try {
      return transaction(this.#requireOpen(), fn);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Every commit here is durable: `durable: false` changes nothing. */
  async upsertUser(id: string, name?: string, _options?: { durable?: boolean }): Promise<void> {
    await this.#tx((c) =>
      c.query(
        `INSERT INTO ${this.#t}im_users (id, name, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET name = COALESCE(EXCLUDED.name, im_users.name)`,
        [id, name ?? null, Date.now()],
      ),
    );
  }

  async users(ids: readonly string[]): Promise<UserRecord[]> {
    const rows = await this.#rows<{ id: string; name: string | null; created_at: number }>(
      `SELECT id, name, created_at FROM ${this.#t}im_users WHERE id = ANY($1) ORDER BY id`,
      [[...new Set(ids)]],
    );
    return rows.map((r) => ({ id: r.id, ...(r.name !== null ? { name: r.name } : {}), createdAt: r.created_at }));
  }

  /** Insert members (existing ones untouched) and refresh the conversation's member count; returns the users added. */
  async #insertMembers(
    c: PoolClient,
    conversation: string,
    members: ReadonlyArray<{ user: string; role: MemberRole }>,
    now: number,
    seq: number,
  ): Promise<string[]> {
    const added: string[] = [];
    for (const m of members) {
      const r = await c.query(
        `INSERT INTO ${this.#t}im_members (conversation, user_id, role, joined_at, joined_seq, read_seq, delivered_seq) VALUES ($1, $2, $3, $4, $5, $5, $5) ON CONFLICT DO NOTHING`,
        [conversation, m.user, m.role, now, seq],
      );
      await c.query(`DELETE FROM ${this.#t}im_invites WHERE conversation = $1 AND user_id = $2`, [conversation, m.user]);
      if (r.rowCount) added.push(m.user);
    }
    await this.#countMembers(c, conversation);
    return added;
  }

  async #countMembers(c: PoolClient, conversation: string): Promise<void> {
    await c.query(`UPDATE ${this.#t}im_conversations SET member_count = (SELECT count(*) FROM ${this.#t}im_members WHERE conversation = $1) WHERE id = $1`, [
      conversation,
    ]);
  }

  async #conv(c: PoolClient, id: string): Promise<ConversationRecord> {
    const { rows } = await c.query<ConvRow>(`SELECT ${CONV_COLS} FROM ${this.#t}im_conversations WHERE id = $1`, [id]);
    return toConv(rows[0]!);
  }

  createConversation(conv: {
    id: string;
    kind: ConversationKind;
    title?: string;
    members: ReadonlyArray<{ user: string; role: MemberRole }>;
  }): Promise<ConversationRecord> {
    return this.#tx(async (c) => {
      const now = Date.now();
      const r = await c.query(
        `INSERT INTO ${this.#t}im_conversations (id, kind, title, created_at, last_time) VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING`,
        [conv.id, conv.kind, conv.title ?? null, now],
      );
      if (!r.rowCount) throw new HeraldError('HERALD_ERR_CONFLICT', 'Conversation exists');
      await this.#insertMembers(c, conv.id, conv.members, now, 0);
      return this.#conv(c, conv.id);
    });
  }

  async ensureDirect(id: string, a: string, b: string): Promise<ConversationRecord> {
    const existing = await this.conversation(id);
    if (existing) return existing;
    return this.#tx(async (c) => {
      const now = Date.now();
      // A concurrent creator (any node) makes this insert wait for its commit, then do nothing.
      const r = await c.query(`INSERT INTO ${this.#t}im_conversations (id, kind, created_at, last_time) VALUES ($1, 'direct', $2, $2) ON CONFLICT DO NOTHING`, [
        id,
        now,
      ]);
      if (r.rowCount)
        await this.#insertMembers(
          c,
          id,
          [...new Set([a, b])].map((user) => ({ user, role: 'member' as MemberRole })),
          now,
          0,
        );
      return this.#conv(c, id);
    });
  }

  async conversation(id: string): Promise<ConversationRecord | undefined> {
    const [r] = await this.#rows<ConvRow>(`SELECT ${CONV_COLS} FROM ${this.#t}im_conversations WHERE id = $1`, [id]);
    return r ? toConv(r) : undefined;
  }

  async member(conversation: string, user: string): Promise<MemberRecord | undefined> {
    const [r] = await this.#rows<MemberRow>(`SELECT ${MEMBER_COLS} FROM ${this.#t}im_members WHERE conversation = $1 AND user_id = $2`, [conversation, user]);
    return r ? toMember(r) : undefined;
  }

  async members(conversation: string): Promise<MemberRecord[]> {
    const rows = await this.#rows<MemberRow>(`SELECT ${MEMBER_COLS} FROM ${this.#t}im_members WHERE conversation = $1 ORDER BY joined_at, user_id`, [
      conversation,
    ]);
    return rows.map(toMember);
  }

  addMembers(conversation: string, members: ReadonlyArray<{ user: string; role: MemberRole }>): Promise<string[]> {
    return this.#tx(async (c) => {
      // The row lock orders this against appends: the seq read here is the one new members start after.
      const { rows } = await c.query<{ seq: number }>(`SELECT seq FROM ${this.#t}im_conversations WHERE id = $1 FOR UPDATE`, [conversation]);
      if (!rows[0]) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION');
      // New members join at the current seq: what came before is neither theirs to read nor unread.
      return this.#insertMembers(c, conversation, members, Date.now(), rows[0].seq);
    });
  }

  removeMember(conversation: string, user: string): Promise<boolean> {
    return this.#tx(async (c) => {
      await c.query(`SELECT 1 FROM ${this.#t}im_conversations WHERE id = $1 FOR UPDATE`, [conversation]);
      const r = await c.query(`DELETE FROM ${this.#t}im_members WHERE conversation = $1 AND user_id = $2`, [conversation, user]);
      if (!r.rowCount) return false;
      await this.#countMembers(c, conversation);
      return true;
    });
  }

  async setRole(conversation: string, user: string, role: MemberRole): Promise<boolean> {
    const r = await this.#tx((c) => c.query(`UPDATE ${this.#t}im_members SET role = $1 WHERE conversation = $2 AND user_id = $3`, [role, conversation, user]));
    return (r.rowCount ?? 0) > 0;
  }

  async groupsOf(user: string): Promise<string[]> {
    const rows = await this.#rows<{ id: string }>(
      `SELECT m.conversation AS id FROM ${this.#t}im_members m JOIN ${this.#t}im_conversations c ON c.id = m.conversation WHERE m.user_id = $1 AND c.kind = 'group' ORDER BY m.conversation`,
      [user],
    );
    return rows.map((r) => r.id);
  }

  async groupCount(user: string): Promise<number> {
    const [r] = await this.#rows<{ n: string }>(
      `SELECT count(*) AS n FROM ${this.#t}im_members m JOIN ${this.#t}im_conversations c ON c.id = m.conversation WHERE m.user_id = $1 AND c.kind = 'group'`,
      [user],
    );
    return Number(r?.n ?? 0);
  }

  async presencePeers(user: string, maxMembers: number): Promise<string[]> {
    const t = this.#t;
    const rows = await this.#rows<{ user_id: string }>(
      `SELECT a.contact AS user_id FROM ${t}im_contacts a JOIN ${t}im_contacts b ON b.user_id = a.contact AND b.contact = a.user_id WHERE a.user_id = $1 AND a.contact <> $1
       UNION SELECT o.user_id FROM ${t}im_members m JOIN ${t}im_conversations c ON c.id = m.conversation JOIN ${t}im_members o ON o.conversation = m.conversation
       WHERE m.user_id = $1 AND c.kind = 'group' AND c.member_count <= $2 AND o.user_id <> $1`,
      [user, maxMembers],
    );
    return rows.map((r) => r.user_id);
  }

  invite(conversation: string, inviter: string, users: readonly string[]): Promise<string[]> {
    return this.#tx(async (c) => {
      const t = this.#t;
      // The conversation row lock orders this against accepts and member changes.
      const { rows } = await c.query(`SELECT 1 FROM ${t}im_conversations WHERE id = $1 FOR UPDATE`, [conversation]);
      if (!rows[0]) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION');
      const now = Date.now();
      const invited: string[] = [];
      for (const u of new Set(users)) {
        const r = await c.query(
          `INSERT INTO ${t}im_invites (conversation, user_id, inviter, created_at) SELECT $1, $2, $3, $4
           WHERE NOT EXISTS (SELECT 1 FROM ${t}im_members WHERE conversation = $1 AND user_id = $2) ON CONFLICT DO NOTHING`,
          [conversation, u, inviter, now],
        );
        if (r.rowCount) invited.push(u);
      }
      return invited;
    });
  }

  async invites(user: string): Promise<InviteRecord[]> {
    const rows = await this.#rows<{ conversation: string; inviter: string; created_at: number }>(
      `SELECT conversation, inviter, created_at FROM ${this.#t}im_invites WHERE user_id = $1 ORDER BY created_at, conversation`,
      [user],
    );
    return rows.map((r) => ({ conversation: r.conversation, inviter: r.inviter, createdAt: r.created_at }));
  }

  async inviteCount(conversation: string): Promise<number> {
    const [r] = await this.#rows<{ n: string }>(`SELECT count(*) AS n FROM ${this.#t}im_invites WHERE conversation = $1`, [conversation]);
    return Number(r?.n ?? 0);
  }

  acceptInvite(conversation: string, user: string): Promise<boolean> {
    return this.#tx(async (c) => {
      const t = this.#t;
      const { rows } = await c.query<{ seq: number }>(`SELECT seq FROM ${t}im_conversations WHERE id = $1 FOR UPDATE`, [conversation]);
      if (!rows[0]) return false;
      const r = await c.query(`DELETE FROM ${t}im_invites WHERE conversation = $1 AND user_id = $2`, [conversation, user]);
      if (!r.rowCount) return false;
      await this.#insertMembers(c, conversation, [{ user, role: 'member' }], Date.now(), rows[0].seq);
      return true;
    });
  }

  async removeInvite(conversation: string, user: string): Promise<boolean> {
    const r = await this.#tx((c) => c.query(`DELETE FROM ${this.#t}im_invites WHERE conversation = $1 AND user_id = $2`, [conversation, user]));
    return (r.rowCount ?? 0) > 0;
  }

  append(input: AppendInput): Promise<AppendResult> {
    try {
      this.#requireOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#commits.append(input);
  }

  async #byClient(c: PoolClient, sender: string, clientId: string): Promise<StoredMessage | undefined> {
    const { rows } = await c.query<MessageRow>(`SELECT ${MESSAGE_COLS} FROM ${this.#t}im_messages WHERE sender = $1 AND client_id = $2`, [sender, clientId]);
    return rows[0] ? toMessage(rows[0]) : undefined;
  }

  /**
   * One append on the careful path, in the batch's transaction after its row locks: the append
   * rule of sql-append.ts, step by step. CHANGE TOGETHER with store-sqlite.ts `append` and
   * `herald_batch` (store-postgres-migrations.ts).
   */
  async #appendOne(c: PoolClient, input: AppendInput): Promise<AppendResult> {
    const t = this.#t;
    if (input.clientId !== undefined) {
      // Read after the conversation lock: a retry on another node committed before it is seen here.
      const dup = await this.#byClient(c, input.sender, input.clientId);
      if (dup) return duplicateAppend(dup);
    }
    const now = Date.now();
    if (changesTarget(input)) {
      const { rows } =
        input.target === undefined
          ? { rows: [] as MessageRow[] }
          : await c.query<MessageRow>(`SELECT ${MESSAGE_COLS} FROM ${t}im_messages WHERE id = $1`, [input.target]);
      const target = rows[0];
      checkEditTarget(input, target);
      if (input.kind === 'recall') await c.query(`UPDATE ${t}im_messages SET payload = 'null', recalled = true WHERE id = $1`, [target.id]);
      else await c.query(`UPDATE ${t}im_messages SET payload = $1, edited_at = $2 WHERE id = $3`, [input.payload, now, target.id]);
    }
    const bumped = await c.query<{ seq: number }>(`UPDATE ${t}im_conversations SET seq = seq + 1, last_time = $1 WHERE id = $2 RETURNING seq`, [
      now,
      input.conversation,
    ]);
    const seq = bumped.rows[0]?.seq;
    if (seq === undefined) throw unknownConversation();
    const id = newMessageId(now);
    await c.query(
      `INSERT INTO ${t}im_messages (id, conversation, seq, sender, client_id, kind, payload, target, time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [id, input.conversation, seq, input.sender, input.clientId ?? null, input.kind, input.payload, input.target ?? null, now],
    );
    const inbox: Array<{ user: string; seq: number }> = [];
    for (const user of recipientsOf(input)) {
      const r = await c.query<{ inbox_head: number }>(`UPDATE ${t}im_users SET inbox_head = inbox_head + 1 WHERE id = $1 RETURNING inbox_head`, [user]);
      const head = r.rows[0]?.inbox_head;
      if (head === undefined) throw unknownRecipient(user);
      await c.query(`INSERT INTO ${t}im_inbox (user_id, seq, message) VALUES ($1, $2, $3)`, [user, head, id]);
      inbox.push({ user, seq: head });
    }
    return { message: appendedMessage(input, id, seq, now), inbox, duplicate: false };
  }

  async message(id: string): Promise<StoredMessage | undefined> {
    const [r] = await this.#rows<MessageRow>(`SELECT ${MESSAGE_COLS} FROM ${this.#t}im_messages WHERE id = $1`, [id]);
    return r ? toMessage(r) : undefined;
  }

  async inbox(user: string, after: number, limit: number): Promise<InboxEntry[]> {
    const cols = MESSAGE_COLS.split(', ')
      .map((c) => `m.${c}`)
      .join(', ');
    const rows = await this.#rows<MessageRow & { inbox_seq: number }>(
      `SELECT i.seq AS inbox_seq, ${cols} FROM ${this.#t}im_inbox i JOIN ${this.#t}im_messages m ON m.id = i.message WHERE i.user_id = $1 AND i.seq > $2 ORDER BY i.seq LIMIT $3`,
      [user, after, limit],
    );
    return rows.map((r) => ({ seq: r.inbox_seq, message: toMessage(r) }));
  }

  async cursor(user: string): Promise<InboxCursor> {
    const [r] = await this.#rows<{ inbox_head: number; inbox_acked: number }>(`SELECT inbox_head, inbox_acked FROM ${this.#t}im_users WHERE id = $1`, [user]);
    return r ? { head: r.inbox_head, acked: r.inbox_acked } : { head: 0, acked: 0 };
  }

  /** Acks join the append batches: one transaction (one WAL flush) for both, user rows locked once. */
  ack(user: string, seq: number): Promise<AckResult> {
    try {
      this.#requireOpen();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#commits.ack(user, seq);
  }

  async #ackOn(c: PoolClient, user: string, seq: number): Promise<AckResult> {
    const t = this.#t;
    const { rows } = await c.query<{ inbox_head: number; inbox_acked: number }>(`SELECT inbox_head, inbox_acked FROM ${t}im_users WHERE id = $1 FOR UPDATE`, [
      user,
    ]);
    const cur = rows[0];
    if (!cur) return { acked: 0, delivered: [] };
    const next = Math.max(cur.inbox_acked, Math.min(seq, cur.inbox_head));
    if (next === cur.inbox_acked) return { acked: next, delivered: [] };
    const delivered = (
      await c.query<{ conversation: string; seq: number }>(
        `SELECT m.conversation, max(m.seq) AS seq FROM ${t}im_inbox i JOIN ${t}im_messages m ON m.id = i.message WHERE i.user_id = $1 AND i.seq > $2 AND i.seq <= $3 GROUP BY m.conversation ORDER BY m.conversation`,
        [user, cur.inbox_acked, next],
      )
    ).rows;
    for (const d of delivered) await this.#raiseDelivered(c, d.conversation, user, d.seq);
    await c.query(`UPDATE ${t}im_users SET inbox_acked = $1 WHERE id = $2`, [next, user]);
    return { acked: next, delivered };
  }

  async #raiseDelivered(c: PoolClient, conversation: string, user: string, seq: number): Promise<void> {
    await c.query(`UPDATE ${this.#t}im_members SET delivered_seq = GREATEST(delivered_seq, $1) WHERE conversation = $2 AND user_id = $3`, [
      seq,
      conversation,
      user,
    ]);
  }

  async history(conversation: string, query: { before?: number; after?: number; limit: number }): Promise<StoredMessage[]> {
    const t = this.#t;
    const rows =
      query.after !== undefined
        ? await this.#rows<MessageRow>(`SELECT ${MESSAGE_COLS} FROM ${t}im_messages WHERE conversation = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [
            conversation,
            query.after,
            query.limit,
          ])
        : await this.#rows<MessageRow>(`SELECT ${MESSAGE_COLS} FROM ${t}im_messages WHERE conversation = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, [
            conversation,
            query.before ?? Number.MAX_SAFE_INTEGER,
            query.limit,
          ]);
    return rows.map(toMessage);
  }

  async conversations(user: string, limit: number): Promise<ConversationSummary[]> {
    const t = this.#t;
    const rows = await this.#rows<ConvRow & { read_seq: number; unread: number; last: MessageRow | null }>(
      `SELECT c.id, c.kind, c.title, c.created_at, c.seq, c.member_count, m.read_seq,
         (SELECT count(*) FROM ${t}im_messages x WHERE x.conversation = c.id AND x.seq > m.read_seq AND x.kind = 'message' AND x.sender <> $1 AND NOT x.recalled) AS unread,
         (SELECT row_to_json(l) FROM (SELECT ${MESSAGE_COLS} FROM ${t}im_messages y WHERE y.conversation = c.id AND y.kind = 'message' AND y.seq > m.joined_seq ORDER BY y.seq DESC LIMIT 1) l) AS last
       FROM ${t}im_members m JOIN ${t}im_conversations c ON c.id = m.conversation
       WHERE m.user_id = $1 ORDER BY c.last_time DESC, c.id LIMIT $2`,
      [user, limit],
    );
    return rows.map((r) => ({ ...toConv(r), readSeq: r.read_seq, unread: r.unread, ...(r.last ? { last: toMessage(r.last) } : {}) }));
  }

  async markDelivered(conversation: string, user: string, seq: number): Promise<void> {
    await this.#tx((c) => this.#raiseDelivered(c, conversation, user, seq));
  }

  markRead(conversation: string, user: string, seq: number): Promise<number> {
    return this.#tx(async (c) => {
      const t = this.#t;
      const conv = (await c.query<{ seq: number }>(`SELECT seq FROM ${t}im_conversations WHERE id = $1`, [conversation])).rows[0];
      if (!conv) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION');
      const r = await c.query<{ read_seq: number }>(
        `UPDATE ${t}im_members SET read_seq = GREATEST(read_seq, LEAST($1::bigint, $2::bigint)) WHERE conversation = $3 AND user_id = $4 RETURNING read_seq`,
        [seq, conv.seq, conversation, user],
      );
      const next = r.rows[0]?.read_seq;
      if (next === undefined) throw new HeraldError('HERALD_ERR_IM_NOT_MEMBER');
      return next;
    });
  }

  async addContact(user: string, contact: string): Promise<void> {
    await this.#tx((c) => c.query(`INSERT INTO ${this.#t}im_contacts (user_id, contact) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [user, contact]));
  }

  async removeContact(user: string, contact: string): Promise<boolean> {
    const r = await this.#tx((c) => c.query(`DELETE FROM ${this.#t}im_contacts WHERE user_id = $1 AND contact = $2`, [user, contact]));
    return (r.rowCount ?? 0) > 0;
  }

  async contacts(user: string): Promise<string[]> {
    return (await this.#rows<{ contact: string }>(`SELECT contact FROM ${this.#t}im_contacts WHERE user_id = $1 ORDER BY contact`, [user])).map(
      (r) => r.contact,
    );
  }

  async mutualContacts(user: string): Promise<string[]> {
    const t = this.#t;
    const rows = await this.#rows<{ contact: string }>(
      `SELECT a.contact FROM ${t}im_contacts a JOIN ${t}im_contacts b ON b.user_id = a.contact AND b.contact = a.user_id WHERE a.user_id = $1 ORDER BY a.contact`,
      [user],
    );
    return rows.map((r) => r.contact);
  }

  async contactCount(user: string): Promise<number> {
    const [r] = await this.#rows<{ n: string }>(`SELECT count(*) AS n FROM ${this.#t}im_contacts WHERE user_id = $1`, [user]);
    return Number(r?.n ?? 0);
  }

  async contactOf(user: string): Promise<string[]> {
    return (await this.#rows<{ user_id: string }>(`SELECT user_id FROM ${this.#t}im_contacts WHERE contact = $1 ORDER BY user_id`, [user])).map(
      (r) => r.user_id,
    );
  }
}
