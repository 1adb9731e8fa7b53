/**
 * The SQLite IM store (single-node default): one file in WAL mode, `better-sqlite3` loaded
 * lazily on `open()`. Writes go through a group-commit queue (store-sqlite-commit.ts): every
 * write arriving in the same event-loop turn is applied in one transaction; a failing write is
 * undone alone and does not undo the others. Reads run directly and see every write whose
 * promise has resolved. Every query is a named statement (`prepareStatements`).
 *
 * Durability (`synchronous: 'full'`, the default): SQLite runs with `synchronous=NORMAL` (no
 * fsync inside COMMIT, which would block the event loop for milliseconds), and the group commit
 * fsyncs the WAL file itself on libuv's thread pool after each commit; a write's promise
 * resolves only once the WAL holding it is on disk, so every resolved write survives a power
 * loss. A reader may see a committed write up to one fsync before it is durable (its writer has
 * not been answered yet). With `synchronous: 'normal'` writes resolve at commit: they survive a
 * process crash, not a power loss.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { HeraldError } from '../core/errors.js';
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
import { type ConvRow, type MessageRow, newMessageId, toConv, toMessage } from './im-rows.js';
import { appendedMessage, changesTarget, checkEditTarget, duplicateAppend, recipientsOf, unknownConversation, unknownRecipient } from './sql-append.js';
import { type Db, SqliteGroupCommit, type Stmt } from './store-sqlite-commit.js';

/** Options of the SQLite store. */
export interface SqliteStoreOptions {
  /** Database file (`:memory:` for a private in-memory database). Parent directories are created. */
  readonly path: string;
  /** `full` resolves writes once their group commit is fsynced (default); `normal` survives a process crash, not a power loss. */
  readonly synchronous?: 'full' | 'normal';
}

type DbConstructor = new (path: string) => Db;

interface MemberRow {
  user: string;
  role: string;
  joined_at: number;
  read_seq: number;
  delivered_seq: number;
  joined_seq: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS im_users (
  id TEXT PRIMARY KEY, name TEXT, created_at INTEGER NOT NULL,
  inbox_head INTEGER NOT NULL DEFAULT 0, inbox_acked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS im_conversations (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, title TEXT, created_at INTEGER NOT NULL,
  seq INTEGER NOT NULL DEFAULT 0, member_count INTEGER NOT NULL DEFAULT 0, last_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS im_members (
  conversation TEXT NOT NULL, user TEXT NOT NULL, role TEXT NOT NULL, joined_at INTEGER NOT NULL,
  read_seq INTEGER NOT NULL DEFAULT 0, delivered_seq INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation, user)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS im_members_user ON im_members (user, conversation);
CREATE TABLE IF NOT EXISTS im_messages (
  id TEXT PRIMARY KEY, conversation TEXT NOT NULL, seq INTEGER NOT NULL, sender TEXT NOT NULL,
  client_id TEXT, kind TEXT NOT NULL, payload TEXT NOT NULL, target TEXT, time INTEGER NOT NULL,
  edited_at INTEGER, recalled INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS im_messages_seq ON im_messages (conversation, seq);
CREATE UNIQUE INDEX IF NOT EXISTS im_messages_client ON im_messages (sender, client_id) WHERE client_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS im_inbox (
  user TEXT NOT NULL, seq INTEGER NOT NULL, message TEXT NOT NULL, PRIMARY KEY (user, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS im_contacts (
  user TEXT NOT NULL, contact TEXT NOT NULL, PRIMARY KEY (user, contact)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS im_contacts_rev ON im_contacts (contact, user);
CREATE TABLE IF NOT EXISTS im_invites (
  conversation TEXT NOT NULL, user TEXT NOT NULL, inviter TEXT NOT NULL, created_at INTEGER NOT NULL,
  PRIMARY KEY (conversation, user)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS im_invites_user ON im_invites (user, created_at);
`;

/** Columns added after the first schema: added to an existing file on open (SQLite has no ADD COLUMN IF NOT EXISTS). */
const ADDED_COLUMNS: ReadonlyArray<{ table: string; column: string; ddl: string }> = [
  // Members added before this column existed read the whole timeline, as they did then.
  { table: 'im_members', column: 'joined_seq', ddl: 'joined_seq INTEGER NOT NULL DEFAULT 0' },
];

/** Every query of the store, prepared once per database and named: a misspelt name does not compile. */
function prepareStatements(db: Db) {
  const p = (sql: string): Stmt => db.prepare(sql);
  return {
    upsertUser: p('INSERT INTO im_users (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = COALESCE(excluded.name, name)'),
    user: p('SELECT id, name, created_at FROM im_users WHERE id = ?'),
    insertConv: p('INSERT INTO im_conversations (id, kind, title, created_at, last_time) VALUES (?, ?, ?, ?, ?)'),
    conv: p('SELECT id, kind, title, created_at, seq, member_count FROM im_conversations WHERE id = ?'),
    insertMember: p('INSERT OR IGNORE INTO im_members (conversation, user, role, joined_at, joined_seq, read_seq, delivered_seq) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    countMembers: p('UPDATE im_conversations SET member_count = (SELECT count(*) FROM im_members WHERE conversation = ?) WHERE id = ?'),
    member: p('SELECT user, role, joined_at, joined_seq, read_seq, delivered_seq FROM im_members WHERE conversation = ? AND user = ?'),
    members: p('SELECT user, role, joined_at, joined_seq, read_seq, delivered_seq FROM im_members WHERE conversation = ? ORDER BY joined_at, user'),
    removeMember: p('DELETE FROM im_members WHERE conversation = ? AND user = ?'),
    setRole: p('UPDATE im_members SET role = ? WHERE conversation = ? AND user = ?'),
    groupsOf: p("SELECT m.conversation AS id FROM im_members m JOIN im_conversations c ON c.id = m.conversation WHERE m.user = ? AND c.kind = 'group'"),
    groupCount: p("SELECT count(*) AS n FROM im_members m JOIN im_conversations c ON c.id = m.conversation WHERE m.user = ? AND c.kind = 'group'"),
    presencePeers: p(
      "SELECT a.contact AS user FROM im_contacts a JOIN im_contacts b ON b.user = a.contact AND b.contact = a.user WHERE a.user = @user AND a.contact <> @user UNION SELECT o.user AS user FROM im_members m JOIN im_conversations c ON c.id = m.conversation JOIN im_members o ON o.conversation = m.conversation WHERE m.user = @user AND c.kind = 'group' AND c.member_count <= @max AND o.user <> @user",
    ),
    insertInvite: p('INSERT OR IGNORE INTO im_invites (conversation, user, inviter, created_at) VALUES (?, ?, ?, ?)'),
    invites: p('SELECT conversation, inviter, created_at FROM im_invites WHERE user = ? ORDER BY created_at, conversation'),
    inviteCount: p('SELECT count(*) AS n FROM im_invites WHERE conversation = ?'),
    removeInvite: p('DELETE FROM im_invites WHERE conversation = ? AND user = ?'),
    byClient: p('SELECT * FROM im_messages WHERE sender = ? AND client_id = ?'),
    bumpConv: p('UPDATE im_conversations SET seq = seq + 1, last_time = ? WHERE id = ? RETURNING seq'),
    insertMessage: p('INSERT INTO im_messages (id, conversation, seq, sender, client_id, kind, payload, target, time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
    message: p('SELECT * FROM im_messages WHERE id = ?'),
    editMessage: p('UPDATE im_messages SET payload = ?, edited_at = ? WHERE id = ?'),
    recallMessage: p("UPDATE im_messages SET payload = 'null', recalled = 1 WHERE id = ?"),
    bumpInbox: p('UPDATE im_users SET inbox_head = inbox_head + 1 WHERE id = ? RETURNING inbox_head'),
    insertInbox: p('INSERT INTO im_inbox (user, seq, message) VALUES (?, ?, ?)'),
    inbox: p('SELECT i.seq AS inbox_seq, m.* FROM im_inbox i JOIN im_messages m ON m.id = i.message WHERE i.user = ? AND i.seq > ? ORDER BY i.seq LIMIT ?'),
    cursor: p('SELECT inbox_head, inbox_acked FROM im_users WHERE id = ?'),
    setAcked: p('UPDATE im_users SET inbox_acked = ? WHERE id = ?'),
    ackedConvs: p(
      'SELECT m.conversation AS conversation, max(m.seq) AS seq FROM im_inbox i JOIN im_messages m ON m.id = i.message WHERE i.user = ? AND i.seq > ? AND i.seq <= ? GROUP BY m.conversation',
    ),
    setDelivered: p('UPDATE im_members SET delivered_seq = max(delivered_seq, ?) WHERE conversation = ? AND user = ?'),
    historyAfter: p('SELECT * FROM im_messages WHERE conversation = ? AND seq > ? ORDER BY seq LIMIT ?'),
    historyBefore: p('SELECT * FROM im_messages WHERE conversation = ? AND seq < ? ORDER BY seq DESC LIMIT ?'),
    convsOf: p(
      'SELECT c.id, c.kind, c.title, c.created_at, c.seq, c.member_count, m.read_seq, m.joined_seq FROM im_members m JOIN im_conversations c ON c.id = m.conversation WHERE m.user = ? ORDER BY c.last_time DESC, c.id LIMIT ?',
    ),
    lastMessage: p("SELECT * FROM im_messages WHERE conversation = ? AND kind = 'message' AND seq > ? ORDER BY seq DESC LIMIT 1"),
    unread: p("SELECT count(*) AS n FROM im_messages WHERE conversation = ? AND seq > ? AND kind = 'message' AND sender <> ? AND recalled = 0"),
    setReadSeq: p('UPDATE im_members SET read_seq = ? WHERE conversation = ? AND user = ?'),
    addContact: p('INSERT OR IGNORE INTO im_contacts (user, contact) VALUES (?, ?)'),
    removeContact: p('DELETE FROM im_contacts WHERE user = ? AND contact = ?'),
    contacts: p('SELECT contact FROM im_contacts WHERE user = ? ORDER BY contact'),
    contactOf: p('SELECT user FROM im_contacts WHERE contact = ? ORDER BY user'),
    mutualContacts: p(
      'SELECT a.contact AS contact FROM im_contacts a JOIN im_contacts b ON b.user = a.contact AND b.contact = a.user WHERE a.user = ? ORDER BY a.contact',
    ),
    contactCount: p('SELECT count(*) AS n FROM im_contacts WHERE user = ?'),
  };
}

/** The store's named statements. */
type Statements = ReturnType<typeof prepareStatements>;

/** An open store: the database, its statements and its group commit. */
interface Live {
  readonly db: Db;
  readonly s: Statements;
  readonly commits: SqliteGroupCommit<Statements>;
}

function toMember(r: MemberRow): MemberRecord {
  return { user: r.user, role: r.role as MemberRole, joinedAt: r.joined_at, joinedSeq: r.joined_seq, readSeq: r.read_seq, deliveredSeq: r.delivered_seq };
}

/** The SQLite implementation of ImStore. */
export class SqliteImStore implements ImStore {
  readonly #options: SqliteStoreOptions;
  /** The open database, its statements and its group commit (undefined before open and after close). */
  #live: Live | undefined;
  #opening: Promise<void> | undefined;
  #closed = false;

  constructor(options: SqliteStoreOptions) {
    this.#options = options;
  }

  open(): Promise<void> {
    this.#opening ??= this.#open();
    return this.#opening;
  }

  async #open(): Promise<void> {
    const Database = ((await import('better-sqlite3' as string)) as { default: DbConstructor }).default;
    if (this.#options.path !== ':memory:') mkdirSync(dirname(this.#options.path), { recursive: true });
    const db = new Database(this.#options.path);
    // First: processes sharing the file (workers of one host) may open it at the same moment.
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    // FULL would fsync inside COMMIT, on the event loop; the WAL is fsynced off-thread instead (#sync).
    db.pragma('synchronous = NORMAL');
    db.exec(SCHEMA);
    // Under the write lock: workers opening the same file at once must not both add a column.
    db.exec('BEGIN IMMEDIATE');
    try {
      for (const c of ADDED_COLUMNS) {
        const cols = db.prepare(`PRAGMA table_info(${c.table})`).all() as Array<{ name: string }>;
        if (!cols.some((x) => x.name === c.column)) db.exec(`ALTER TABLE ${c.table} ADD COLUMN ${c.ddl}`);
      }
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
    const s = prepareStatements(db);
    const durable = this.#options.synchronous !== 'normal' && this.#options.path !== ':memory:';
    this.#live = { db, s, commits: new SqliteGroupCommit(db, s, durable ? `${this.#options.path}-wal` : undefined) };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#opening) await this.#opening.catch(() => undefined);
    const live = this.#live;
    if (!live) return;
    await live.commits.close();
    live.db.close();
    this.#live = undefined;
  }

  /** The open database's statements; throws HERALD_ERR_UNAVAILABLE when the store is not open (or closed). */
  #requireOpen(): Statements {
    return this.#requireLive().s;
  }

  #requireLive(): Live {
    if (!this.#live) throw new HeraldError('HERALD_ERR_UNAVAILABLE', this.#closed ? 'IM store closed' : 'IM store not open');
    return this.#live;
  }

  /** Queue a write for the next group commit; `fn` runs with the statements, inside the group's transaction. */
  #write<T>(fn: (s: Statements) => T, synced = true): Promise<T> {
    return this.#requireLive().commits.write(fn, synced);
  }

  async upsertUser(id: string, name?: string, options?: { durable?: boolean }): Promise<void> {
    await this.#write((s) => s.upsertUser.run(id, name ?? null, Date.now()), options?.durable !== false);
  }

  async users(ids: readonly string[]): Promise<UserRecord[]> {
    const s = this.#requireOpen();
    const out: UserRecord[] = [];
    for (const id of new Set(ids)) {
      const r = s.user.get(id) as { id: string; name: string | null; created_at: number } | undefined;
      if (r) out.push({ id: r.id, ...(r.name !== null ? { name: r.name } : {}), createdAt: r.created_at });
    }
    return out;
  }

  createConversation(conv: {
    id: string;
    kind: ConversationKind;
    title?: string;
    members: ReadonlyArray<{ user: string; role: MemberRole }>;
  }): Promise<ConversationRecord> {
    return this.#write((s) => {
      const now = Date.now();
      if (s.conv.get(conv.id)) throw new HeraldError('HERALD_ERR_CONFLICT', 'Conversation exists');
      s.insertConv.run(conv.id, conv.kind, conv.title ?? null, now, now);
      for (const m of conv.members) s.insertMember.run(conv.id, m.user, m.role, now, 0, 0, 0);
      s.countMembers.run(conv.id, conv.id);
      return toConv(s.conv.get(conv.id) as ConvRow);
    });
  }

  async ensureDirect(id: string, a: string, b: string): Promise<ConversationRecord> {
    const s = this.#requireOpen();
    const existing = s.conv.get(id) as ConvRow | undefined;
    if (existing) return toConv(existing);
    return this.#write((s) => {
      const again = s.conv.get(id) as ConvRow | undefined;
      if (again) return toConv(again);
      const now = Date.now();
      s.insertConv.run(id, 'direct', null, now, now);
      for (const u of new Set([a, b])) s.insertMember.run(id, u, 'member', now, 0, 0, 0);
      s.countMembers.run(id, id);
      return toConv(s.conv.get(id) as ConvRow);
    });
  }

  async conversation(id: string): Promise<ConversationRecord | undefined> {
    const s = this.#requireOpen();
    const r = s.conv.get(id) as ConvRow | undefined;
    return r ? toConv(r) : undefined;
  }

  async member(conversation: string, user: string): Promise<MemberRecord | undefined> {
    const s = this.#requireOpen();
    const r = s.member.get(conversation, user) as MemberRow | undefined;
    return r ? toMember(r) : undefined;
  }

  async members(conversation: string): Promise<MemberRecord[]> {
    const s = this.#requireOpen();
    return (s.members.all(conversation) as MemberRow[]).map(toMember);
  }

  addMembers(conversation: string, members: ReadonlyArray<{ user: string; role: MemberRole }>): Promise<string[]> {
    return this.#write((s) => {
      const conv = s.conv.get(conversation) as ConvRow | undefined;
      if (!conv) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION');
      const now = Date.now();
      const added: string[] = [];
      // New members join at the current seq: what came before is neither theirs to read nor unread.
      for (const m of members) {
        s.removeInvite.run(conversation, m.user);
        if (s.insertMember.run(conversation, m.user, m.role, now, conv.seq, conv.seq, conv.seq).changes > 0) added.push(m.user);
      }
      s.countMembers.run(conversation, conversation);
      return added;
    });
  }

  removeMember(conversation: string, user: string): Promise<boolean> {
    return this.#write((s) => {
      const removed = s.removeMember.run(conversation, user).changes > 0;
      if (removed) s.countMembers.run(conversation, conversation);
      return removed;
    });
  }

  setRole(conversation: string, user: string, role: MemberRole): Promise<boolean> {
    return this.#write((s) => s.setRole.run(role, conversation, user).changes > 0);
  }

  async groupsOf(user: string): Promise<string[]> {
    const s = this.#requireOpen();
    return (s.groupsOf.all(user) as Array<{ id: string }>).map((r) => r.id);
  }

  async groupCount(user: string): Promise<number> {
    const s = this.#requireOpen();
    return (s.groupCount.get(user) as { n: number }).n;
  }

  async presencePeers(user: string, maxMembers: number): Promise<string[]> {
    const s = this.#requireOpen();
    return (s.presencePeers.all({ user, max: maxMembers }) as Array<{ user: string }>).map((r) => r.user);
  }

  invite(conversation: string, inviter: string, users: readonly string[]): Promise<string[]> {
    return this.#write((s) => {
      if (!s.conv.get(conversation)) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION');
      const now = Date.now();
      const invited: string[] = [];
      for (const u of new Set(users)) {
        if (s.member.get(conversation, u)) continue;
        if (s.insertInvite.run(conversation, u, inviter, now).changes > 0) invited.push(u);
      }
      return invited;
    });
  }

  async invites(user: string): Promise<InviteRecord[]> {
    const s = this.#requireOpen();
    const rows = s.invites.all(user) as Array<{ conversation: string; inviter: string; created_at: number }>;
    return rows.map((r) => ({ conversation: r.conversation, inviter: r.inviter, createdAt: r.created_at }));
  }

  async inviteCount(conversation: string): Promise<number> {
    const s = this.#requireOpen();
    return (s.inviteCount.get(conversation) as { n: number }).n;
  }

  acceptInvite(conversation: string, user: string): Promise<boolean> {
    return this.#write((s) => {
      if (s.removeInvite.run(conversation, user).changes === 0) return false;
      const conv = s.conv.get(conversation) as ConvRow | undefined;
      if (!conv) return false;
      s.insertMember.run(conversation, user, 'member', Date.now(), conv.seq, conv.seq, conv.seq);
      s.countMembers.run(conversation, conversation);
      return true;
    });
  }

  removeInvite(conversation: string, user: string): Promise<boolean> {
    return this.#write((s) => s.removeInvite.run(conversation, user).changes > 0);
  }

  /** The append rule of sql-append.ts, step by step. CHANGE TOGETHER with store-postgres.ts `#appendOne` and `herald_batch`. */
  append(input: AppendInput): Promise<AppendResult> {
    return this.#write((s) => {
      if (input.clientId !== undefined) {
        const dup = s.byClient.get(input.sender, input.clientId) as MessageRow | undefined;
        if (dup) return duplicateAppend(toMessage(dup));
      }
      const now = Date.now();
      if (changesTarget(input)) {
        const t = input.target === undefined ? undefined : (s.message.get(input.target) as MessageRow | undefined);
        checkEditTarget(input, t);
        if (input.kind === 'recall') s.recallMessage.run(t.id);
        else s.editMessage.run(input.payload, now, t.id);
      }
      const bumped = s.bumpConv.get(now, input.conversation) as { seq: number } | undefined;
      if (!bumped) throw unknownConversation();
      const id = newMessageId(now);
      s.insertMessage.run(id, input.conversation, bumped.seq, input.sender, input.clientId ?? null, input.kind, input.payload, input.target ?? null, now);
      const inbox: Array<{ user: string; seq: number }> = [];
      for (const user of recipientsOf(input)) {
        const r = s.bumpInbox.get(user) as { inbox_head: number } | undefined;
        if (!r) throw unknownRecipient(user);
        s.insertInbox.run(user, r.inbox_head, id);
        inbox.push({ user, seq: r.inbox_head });
      }
      return { message: appendedMessage(input, id, bumped.seq, now), inbox, duplicate: false };
    });
  }

  async message(id: string): Promise<StoredMessage | undefined> {
    const s = this.#requireOpen();
    const r = s.message.get(id) as MessageRow | undefined;
    return r ? toMessage(r) : undefined;
  }

  async inbox(user: string, after: number, limit: number): Promise<InboxEntry[]> {
    const s = this.#requireOpen();
    const rows = s.inbox.all(user, after, limit) as Array<MessageRow & { inbox_seq: number }>;
    return rows.map((r) => ({ seq: r.inbox_seq, message: toMessage(r) }));
  }

  async cursor(user: string): Promise<InboxCursor> {
    const s = this.#requireOpen();
    const r = s.cursor.get(user) as { inbox_head: number; inbox_acked: number } | undefined;
    return r ? { head: r.inbox_head, acked: r.inbox_acked } : { head: 0, acked: 0 };
  }

  ack(user: string, seq: number): Promise<AckResult> {
    return this.#write((s) => {
      const c = s.cursor.get(user) as { inbox_head: number; inbox_acked: number } | undefined;
      if (!c) return { acked: 0, delivered: [] };
      const next = Math.max(c.inbox_acked, Math.min(seq, c.inbox_head));
      if (next === c.inbox_acked) return { acked: next, delivered: [] };
      const delivered = s.ackedConvs.all(user, c.inbox_acked, next) as Array<{ conversation: string; seq: number }>;
      for (const d of delivered) s.setDelivered.run(d.seq, d.conversation, user);
      s.setAcked.run(next, user);
      return { acked: next, delivered };
    });
  }

  async history(conversation: string, query: { before?: number; after?: number; limit: number }): Promise<StoredMessage[]> {
    const s = this.#requireOpen();
    const rows =
      query.after !== undefined
        ? (s.historyAfter.all(conversation, query.after, query.limit) as MessageRow[])
        : (s.historyBefore.all(conversation, query.before ?? Number.MAX_SAFE_INTEGER, query.limit) as MessageRow[]);
    return rows.map(toMessage);
  }

  async conversations(user: string, limit: number): Promise<ConversationSummary[]> {
    const s = this.#requireOpen();
    const rows = s.convsOf.all(user, limit) as Array<ConvRow & { read_seq: number; joined_seq: number }>;
    return rows.map((r) => {
      const last = s.lastMessage.get(r.id, r.joined_seq) as MessageRow | undefined;
      const unread = (s.unread.get(r.id, r.read_seq, user) as { n: number }).n;
      return { ...toConv(r), readSeq: r.read_seq, unread, ...(last ? { last: toMessage(last) } : {}) };
    });
  }

  markRead(conversation: string, user: string, seq: number): Promise<number> {
    return this.#write((s) => {
      const conv = s.conv.get(conversation) as ConvRow | undefined;
      if (!conv) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION');
      const m = s.member.get(conversation, user) as MemberRow | undefined;
      if (!m) throw new HeraldError('HERALD_ERR_IM_NOT_MEMBER');
      const next = Math.max(m.read_seq, Math.min(seq, conv.seq));
      if (next !== m.read_seq) s.setReadSeq.run(next, conversation, user);
      return next;
    });
  }

  async markDelivered(conversation: string, user: string, seq: number): Promise<void> {
    await this.#write((s) => s.setDelivered.run(seq, conversation, user));
  }

  async addContact(user: string, contact: string): Promise<void> {
    await this.#write((s) => s.addContact.run(user, contact));
  }

  removeContact(user: string, contact: string): Promise<boolean> {
    return this.#write((s) => s.removeContact.run(user, contact).changes > 0);
  }

  async contacts(user: string): Promise<string[]> {
    const s = this.#requireOpen();
    return (s.contacts.all(user) as Array<{ contact: string }>).map((r) => r.contact);
  }

  async contactOf(user: string): Promise<string[]> {
    const s = this.#requireOpen();
    return (s.contactOf.all(user) as Array<{ user: string }>).map((r) => r.user);
  }

  async mutualContacts(user: string): Promise<string[]> {
    const s = this.#requireOpen();
    return (s.mutualContacts.all(user) as Array<{ contact: string }>).map((r) => r.contact);
  }

  async contactCount(user: string): Promise<number> {
    const s = this.#requireOpen();
    return (s.contactCount.get(user) as { n: number }).n;
  }
}
