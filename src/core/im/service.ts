/**
 * The IM service: durable one-to-one and group messaging over the core's channels.
 *
 * - Every message is committed to the IM store before the sender's ack (which carries the server
 *   message id, the conversation seq and the time). A retried send with the same client message
 *   id returns the original ack (`duplicate: true`).
 * - Each user has a personal channel `inbox:<user>` (reserved namespace, no channel history) that
 *   only that user may subscribe to. Everything for the user is pushed there, so it reaches every
 *   session on every transport; inbox messages carry the user's inbox seq.
 * - Missed messages come from the store: `sync(after)` returns the inbox in order. Clients ack
 *   cumulatively; unacked inbox entries are re-sent (same ids and seqs) after a timeout that
 *   doubles per attempt, and when the user's first session on this node appears.
 * - Groups above `im.largeGroupThreshold` members are not copied into every inbox (write
 *   amplification): their messages live once in the group timeline, are pushed live to members
 *   without an inbox seq, and `sync` reports which large groups have entries past the member's
 *   delivered cursor so the client pages them with `history` and acks with `ackGroup`.
 * - Group rules (consent by invitation, roles, bounds) live in groups.ts, contacts with the
 *   presence visibility rules in contacts.ts, inbox publishing, sessions and re-delivery in
 *   delivery.ts; this facade delegates to them. Members read a conversation's history from the
 *   seq they joined at.
 */
import type { Identity } from '../auth.js';
import type { HeraldCore } from '../core.js';
import { HeraldError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { StreamPosition } from '../../protocol/position.js';
import type { ChosenState, PresenceRecord, PresenceStore } from './presence.js';
import { RateLimiter } from './rate-limit.js';
import { ImAdmin } from './admin.js';
import { ImContacts } from './contacts.js';
import { type GroupChangeOptions, ImGroups } from './groups.js';
import type { ConversationRecord, ConversationSummary, ImStore, InboxEntry, MemberRecord, MemberRole, MessageKind, StoredMessage } from './store.js';
import { messageEventJson } from './wire.js';
import { ImDelivery, INBOX_NAMESPACE, inboxChannel } from './delivery.js';
import { USER_ID_RE } from '../user-id.js';

/**
 * Inbox channels keep a short live history so a client that reconnects (SSE) or polls again
 * (long-poll) resumes from its position without losing what is never stored: typing, receipts,
 * presence. Messages themselves are durable in the store and synced by inbox seq regardless.
 */
const INBOX_HISTORY_SIZE = 100;
const INBOX_HISTORY_TTL_MS = 30_000;

export { INBOX_NAMESPACE, inboxChannel };

/** The id of the direct conversation between two users (order-independent). */
export function directConversationId(a: string, b: string): string {
  return a < b ? `d:${a}:${b}` : `d:${b}:${a}`;
}

/** The sender's ack of a send (also of recall and edit). */
export interface SendAck {
  readonly id: string;
  readonly conversation: string;
  readonly seq: number;
  readonly time: number;
  /** True when this is the ack of an earlier send with the same client message id. */
  readonly duplicate: boolean;
}

/** What `sync` returns. */
export interface SyncResult {
  readonly entries: InboxEntry[];
  /** Inbox head (newest inbox seq) and the acknowledged cursor. */
  readonly head: number;
  readonly acked: number;
  /** True when more entries follow the last one returned. */
  readonly more: boolean;
  /** Position of the inbox channel read before the store: resume a long-poll/SSE from it. */
  readonly position: StreamPosition;
  /** Large groups with entries past the member's delivered cursor. */
  readonly groups: ReadonlyArray<{ readonly conversation: string; readonly seq: number; readonly deliveredSeq: number }>;
}

/** Options of `new ImService()`. */
export interface ImServiceOptions {
  readonly core: HeraldCore;
  readonly store: ImStore;
  readonly presence: PresenceStore;
  readonly logger?: Logger;
}

/** The IM service of one node. */
export class ImService {
  readonly core: HeraldCore;
  readonly presence: PresenceStore;
  /** The backend's operations (server API): system messages, groups as their owner, contact lists. */
  readonly admin: ImAdmin;
  /** Groups: creation, consent (invitations), membership, roles (groups.ts). */
  readonly groups: ImGroups;
  /** Contacts and who sees whose presence (contacts.ts). */
  readonly contactBook: ImContacts;
  /** Inbox publishing, sessions and re-delivery (delivery.ts). */
  readonly #delivery: ImDelivery;
  /** Private: every IM rule goes through this facade (or `admin`), never straight to the store. */
  readonly #store: ImStore;
  readonly #cfg: HeraldCore['config']['im'];
  readonly #logger: Logger;
  readonly #sends: RateLimiter;
  readonly #typing: RateLimiter;
  /** Users known to exist (cache of the store's users table). */
  readonly #known = new Set<string>();
  /** Registrations in flight (a user subscribing to its inbox is registered). */
  readonly #registering = new Map<string, Promise<void>>();
  /** Direct conversations known to exist, with their members (skips store reads per 1:1 send and receipt). */
  readonly #directs = new Map<string, readonly string[]>();
  #opening: Promise<void> | undefined;
  #closed = false;

  constructor(options: ImServiceOptions) {
    this.core = options.core;
    this.#store = options.store;
    this.admin = new ImAdmin(this, options.store, options.core.config.backend.systemUser);
    this.presence = options.presence;
    this.#cfg = options.core.config.im;
    this.#logger = options.logger ?? options.core.logger;
    const emit = (user: string, body: Buffer): void => this.#delivery.emit(user, body);
    const ready = (): Promise<void> => this.ready();
    this.contactBook = new ImContacts({ store: options.store, presence: options.presence, core: options.core, ready, emit, closed: () => this.#closed });
    this.groups = new ImGroups({
      store: options.store,
      core: options.core,
      membership: (user, conversation, groupOnly) => this.#membership(user, conversation, groupOnly),
      memberEvent: (conv, actor, event, extra) => this.#memberEvent(conv, actor, event, extra),
      assertKnown: (users) => this.#assertKnown(users),
      mutualContacts: (user) => this.contactBook.mutual(user),
      emit,
      sharePresence: (user, others) => this.contactBook.share(user, others),
    });
    this.#sends = new RateLimiter(this.#cfg.sendsPerSecond);
    this.#typing = new RateLimiter(this.#cfg.typingPerSecond);
    this.core.reserveNamespace(
      INBOX_NAMESPACE,
      { historySize: INBOX_HISTORY_SIZE, historyTtlMs: INBOX_HISTORY_TTL_MS, allowPublish: false, joinLeave: false, requireToken: true },
      (identity, channel) => identity !== undefined && channel === inboxChannel(identity.user),
    );
    this.#delivery = new ImDelivery({
      core: options.core,
      store: options.store,
      presence: options.presence,
      ready,
      closed: () => this.#closed,
      seen: (user) => this.#seen(user),
      presenceChanged: (rec) => this.contactBook.announce(rec),
      warn: (err, msg) => this.#warn(err, msg),
    });
  }

  /** Open the store (lazily, on first use). A failed open (database unreachable) is tried again by the next call. */
  ready(): Promise<void> {
    if (this.#closed) return Promise.reject(new HeraldError('HERALD_ERR_UNAVAILABLE', 'IM service closed'));
    this.#opening ??= this.#store.open().catch((err: unknown) => {
      this.#opening = undefined;
      throw err;
    });
    return this.#opening;
  }

  /** Stop timers and close the engines. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#delivery.close();
    await this.#store.close();
    await this.presence.close();
  }

  /**
   * Check the caller may use the IM and register it as a known user. Throws
   * HERALD_ERR_UNAUTHORIZED without an identity, HERALD_ERR_TOKEN_EXPIRED past the token's `exp`.
   */
  async authorize(identity: Identity | undefined): Promise<string> {
    if (!identity) throw new HeraldError('HERALD_ERR_UNAUTHORIZED', 'The IM needs an authenticated connection');
    if (identity.exp !== undefined && identity.exp * 1000 <= Date.now()) throw new HeraldError('HERALD_ERR_TOKEN_EXPIRED', 'Token expired');
    await this.ready();
    if (!this.#known.has(identity.user)) {
      // A login does not wait for the disk: a registration lost in a crash is made again at the
      // user's next login, and anything stored for the user later syncs it to disk first.
      await this.#store.upsertUser(identity.user, identity.name, { durable: false });
      this.#remember(identity.user);
    }
    return identity.user;
  }

  /** Register a user (server API), so others can message it before it first connects. */
  async registerUser(id: string, name?: string): Promise<void> {
    if (!USER_ID_RE.test(id)) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Invalid user id');
    await this.ready();
    await this.#store.upsertUser(id, name);
    this.#remember(id);
  }

  // ---- messages ----------------------------------------------------------------------------

  /** Send to a user (`to`) or a conversation/group (`conversation`); `system` skips the sender's rate limit. */
  async send(user: string, p: { to?: string; conversation?: string; clientId?: string; data: unknown }, options?: { system?: boolean }): Promise<SendAck> {
    // The server API's system sender is trusted and not rate-limited.
    if (!options?.system && !this.#sends.take(user))
      throw new HeraldError('HERALD_ERR_TOO_MANY_REQUESTS', `At most ${this.#cfg.sendsPerSecond} messages per second`);
    const payload = this.#payload(p.data);
    let conv: ConversationRecord;
    let recipients: string[] | undefined;
    if (p.to !== undefined) {
      if (p.conversation !== undefined) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Give `to` or `conversation`, not both');
      await this.#assertKnown([p.to]);
      const id = directConversationId(user, p.to);
      if (this.#directs.has(id)) {
        conv = { id, kind: 'direct', createdAt: 0, seq: 0, memberCount: user === p.to ? 1 : 2 };
      } else {
        conv = await this.#store.ensureDirect(id, user, p.to);
        this.#rememberDirect(id, user === p.to ? [user] : [user, p.to]);
      }
      recipients = user === p.to ? [user] : [user, p.to];
    } else if (p.conversation !== undefined) {
      conv = (await this.#membership(user, p.conversation)).conv;
    } else {
      throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Give `to` (a user) or `conversation`');
    }
    return this.#append(conv, user, 'message', payload, { clientId: p.clientId, recipients });
  }

  /** Recall one's own message within the recall window. */
  async recall(user: string, id: string, clientId?: string): Promise<SendAck> {
    const target = await this.#ownMessage(user, id);
    const { conv } = await this.#membership(user, target.conversation);
    return this.#append(conv, user, 'recall', 'null', { clientId, target: id, notBefore: Date.now() - this.#cfg.recallWindowMs });
  }

  /** Replace the payload of one's own message. */
  async edit(user: string, id: string, data: unknown, clientId?: string): Promise<SendAck> {
    if (!this.#sends.take(user)) throw new HeraldError('HERALD_ERR_TOO_MANY_REQUESTS', `At most ${this.#cfg.sendsPerSecond} messages per second`);
    const payload = this.#payload(data);
    const target = await this.#ownMessage(user, id);
    const { conv } = await this.#membership(user, target.conversation);
    return this.#append(conv, user, 'edit', payload, { clientId, target: id });
  }

  /**
   * The user's inbox after `after` (default: the acknowledged cursor), in order. `position`: the
   * inbox channel's position the caller read before this call (a subscription's start), returned
   * as the result's position instead of reading it again (one broker read fewer per login with
   * the Redis broker).
   */
  async sync(user: string, after: number | undefined, limit: number | undefined, position?: StreamPosition): Promise<SyncResult> {
    // Read the channel position before the store so nothing falls between the two.
    position ??= (await this.core.history(inboxChannel(user), { limit: 0 })).position;
    const cursor = await this.#store.cursor(user);
    const from = after ?? cursor.acked;
    const max = Math.min(limit ?? this.#cfg.syncLimit, this.#cfg.syncLimit);
    // Inbox seqs end at the head: after it there is nothing to read (a login with nothing waiting).
    const entries = from >= cursor.head ? [] : await this.#store.inbox(user, from, max + 1);
    const more = entries.length > max;
    if (more) entries.length = max;
    const groups = [];
    for (const id of await this.#store.groupsOf(user)) {
      const conv = await this.#store.conversation(id);
      if (!conv || conv.memberCount <= this.#cfg.largeGroupThreshold) continue;
      const m = await this.#store.member(id, user);
      if (m && conv.seq > m.deliveredSeq) groups.push({ conversation: id, seq: conv.seq, deliveredSeq: m.deliveredSeq });
    }
    return { entries, head: Math.max(cursor.head, entries.at(-1)?.seq ?? 0), acked: cursor.acked, more, position, groups };
  }

  /** Cumulative ack of the inbox up to `seq`; sends delivery receipts. Returns the new cursor. */
  async ack(user: string, seq: number): Promise<number> {
    const res = await this.#store.ack(user, seq);
    this.#delivery.acked(user, res.acked);
    for (const d of res.delivered) void this.#receipt(user, d.conversation, 'delivered', d.seq).catch((err) => this.#warn(err, 'receipt failed'));
    return res.acked;
  }

  /** Ack a large group's timeline up to `seq` (its inbox carries no entries for it). */
  async ackGroup(user: string, conversation: string, seq: number): Promise<number> {
    const { conv, member } = await this.#membership(user, conversation);
    const next = Math.max(member.deliveredSeq, Math.min(seq, conv.seq));
    await this.#store.markDelivered(conversation, user, next);
    return next;
  }

  /** Page a conversation the user belongs to. */
  async history(user: string, conversation: string, q: { before?: number; after?: number; limit?: number }): Promise<StoredMessage[]> {
    const { member } = await this.#membership(user, conversation);
    const limit = Math.min(q.limit ?? 50, this.#cfg.syncLimit);
    // A member reads from the seq it joined at: what the group said before stays hidden.
    const floor = member.joinedSeq;
    if (q.after !== undefined) return this.#store.history(conversation, { after: Math.max(q.after, floor), limit });
    const page = await this.#store.history(conversation, { before: q.before, limit });
    return floor > 0 ? page.filter((m) => m.seq > floor) : page;
  }

  /**
   * A message by id, when the user is a member of its conversation and the message is not older
   * than the member's join (history's rule); otherwise HERALD_ERR_IM_UNKNOWN_MESSAGE, the same
   * answer whether the message does not exist or belongs to others.
   */
  async message(user: string, id: string): Promise<StoredMessage> {
    const m = await this.#store.message(id);
    const member = m && (await this.#store.member(m.conversation, user));
    if (!m || !member || m.seq <= member.joinedSeq) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_MESSAGE');
    return m;
  }

  /** The user's conversations with unread counts and last messages. */
  conversations(user: string, limit?: number): Promise<ConversationSummary[]> {
    return this.#store.conversations(user, Math.min(limit ?? 100, this.#cfg.syncLimit));
  }

  /** Mark a conversation read up to `seq`; members get a read receipt. */
  async read(user: string, conversation: string, seq: number): Promise<number> {
    await this.#membership(user, conversation);
    const next = await this.#store.markRead(conversation, user, seq);
    await this.#receipt(user, conversation, 'read', next);
    return next;
  }

  /** Tell the other members the user is typing (never stored). */
  async typing(user: string, conversation: string): Promise<void> {
    if (!this.#typing.take(user)) throw new HeraldError('HERALD_ERR_TOO_MANY_REQUESTS', `At most ${this.#cfg.typingPerSecond} typing notifications per second`);
    const { conv } = await this.#membership(user, conversation);
    if (conv.memberCount > this.#cfg.largeGroupThreshold) return;
    const members = await this.#store.members(conversation);
    const body = Buffer.from(JSON.stringify({ type: 'typing', conversation, user }));
    for (const m of members) if (m.user !== user) this.#emit(m.user, body);
  }

  // ---- groups (groups.ts) -------------------------------------------------------------------

  /** Create a group with the caller as owner; mutual contacts join, others are invited (`direct`: the backend, all join). */
  createGroup(
    user: string,
    p: { title?: string; members: readonly string[] },
    o?: GroupChangeOptions,
  ): Promise<{ conv: ConversationRecord; invited: string[] }> {
    return this.groups.create(user, p, o);
  }

  /** Add members (owner or admin): mutual contacts join, others are invited (`direct`: the backend, all join). */
  addMembers(user: string, group: string, users: readonly string[], o?: GroupChangeOptions): Promise<{ added: string[]; invited: string[] }> {
    return this.groups.add(user, group, users, o);
  }

  /** Remove a member (owner or admin), or leave when `target === user`. */
  removeMember(user: string, group: string, target: string, o?: GroupChangeOptions): Promise<void> {
    return this.groups.remove(user, group, target, o);
  }

  /** Set a member's role (owner only; giving `owner` transfers ownership). */
  setRole(user: string, group: string, target: string, role: MemberRole, o?: GroupChangeOptions): Promise<void> {
    return this.groups.setRole(user, group, target, role, o);
  }

  /** Members of a conversation the user belongs to. */
  members(user: string, conversation: string): Promise<MemberRecord[]> {
    return this.groups.members(user, conversation);
  }

  // ---- presence and contacts (contacts.ts) ---------------------------------------------------

  /** Set the user's chosen state and status text; its presence peers are told. */
  setPresence(user: string, state: ChosenState, status?: string): Promise<PresenceRecord> {
    return this.contactBook.set(user, state, status);
  }

  /**
   * Presence of users as `viewer` may see it (peers as they are, anyone else as an unknown
   * user); `viewer` undefined (the server API) reads unmasked.
   */
  getPresence(viewer: string | undefined, users: readonly string[]): Promise<PresenceRecord[]> {
    return this.contactBook.get(viewer, users);
  }

  /** Add a contact (one-way; the same answer for known and unknown ids). */
  addContact(user: string, contact: string): Promise<void> {
    return this.contactBook.add(user, contact);
  }

  /** Remove a contact. */
  removeContact(user: string, contact: string): Promise<boolean> {
    return this.contactBook.remove(user, contact);
  }

  /** The user's contacts with their presence as the user may see it (`raw`: unmasked, for the server API). */
  contacts(user: string, raw = false): Promise<PresenceRecord[]> {
    return this.contactBook.list(user, raw);
  }

  // ---- internals ---------------------------------------------------------------------------

  #payload(data: unknown): string {
    if (data === undefined) throw new HeraldError('HERALD_ERR_BAD_REQUEST', '`data` is required');
    const text = JSON.stringify(data);
    if (Buffer.byteLength(text) > this.#cfg.maxPayloadBytes) {
      throw new HeraldError('HERALD_ERR_PAYLOAD_TOO_LARGE', `Message payload larger than ${this.#cfg.maxPayloadBytes} bytes`);
    }
    return text;
  }

  #remember(user: string): void {
    if (this.#known.size >= 200_000) this.#known.clear();
    this.#known.add(user);
  }

  async #assertKnown(users: readonly string[]): Promise<void> {
    for (const u of users) await this.#registering.get(u);
    const missing = users.filter((u) => !this.#known.has(u));
    if (missing.length === 0) return;
    for (const u of missing) if (!USER_ID_RE.test(u)) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_USER', `Unknown user: ${u.slice(0, 128)}`);
    const found = new Set((await this.#store.users(missing)).map((r) => r.id));
    for (const u of missing) {
      if (!found.has(u)) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_USER', `Unknown user: ${u}`);
      this.#remember(u);
    }
  }

  async #membership(user: string, conversation: string, groupOnly = false): Promise<{ conv: ConversationRecord; member: MemberRecord }> {
    const conv = await this.#store.conversation(conversation);
    if (!conv || (groupOnly && conv.kind !== 'group'))
      throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION', `Unknown ${groupOnly ? 'group' : 'conversation'}`);
    const member = await this.#store.member(conversation, user);
    if (!member) throw new HeraldError('HERALD_ERR_IM_NOT_MEMBER');
    return { conv, member };
  }

  async #ownMessage(user: string, id: string): Promise<StoredMessage> {
    const m = await this.#store.message(id);
    if (!m || m.kind !== 'message') throw new HeraldError('HERALD_ERR_IM_UNKNOWN_MESSAGE');
    if (m.sender !== user) throw new HeraldError('HERALD_ERR_IM_NOT_ALLOWED', 'Only the author may recall or edit a message');
    return m;
  }

  /**
   * Append to a conversation and push it. Recipients with inbox entries: `recipients` when
   * given (direct), else every member of a small group, else (large group) only `extra`.
   */
  async #append(
    conv: ConversationRecord,
    sender: string,
    kind: MessageKind,
    payload: string,
    o: { clientId?: string; recipients?: string[]; target?: string; notBefore?: number; extra?: readonly string[] },
  ): Promise<SendAck> {
    let inboxUsers = o.recipients;
    let liveOnly: string[] = [];
    if (!inboxUsers) {
      const members = (await this.#store.members(conv.id)).map((m) => m.user);
      if (members.length > this.#cfg.largeGroupThreshold) {
        inboxUsers = [...(o.extra ?? [])];
        const set = new Set(inboxUsers);
        liveOnly = members.filter((u) => !set.has(u));
      } else {
        inboxUsers = [...new Set([...members, ...(o.extra ?? [])])];
      }
    }
    const res = await this.#store.append({
      conversation: conv.id,
      sender,
      clientId: o.clientId,
      kind,
      payload,
      target: o.target,
      recipients: inboxUsers,
      notBefore: o.notBefore,
    });
    const m = res.message;
    if (!res.duplicate) {
      for (const { user, seq } of res.inbox) this.#emit(user, Buffer.from(messageEventJson(m, seq)));
      if (liveOnly.length) {
        const body = Buffer.from(messageEventJson(m, undefined));
        for (const u of liveOnly) this.#emit(u, body);
      }
      this.#webhooks(
        m,
        res.inbox.map((e) => e.user),
      );
    }
    return { id: m.id, conversation: m.conversation, seq: m.seq, time: m.time, duplicate: res.duplicate };
  }

  /** Webhooks of a stored message: `im.message`, and `im.offline_unread` for offline recipients. */
  #webhooks(m: StoredMessage, recipients: string[]): void {
    const backend = this.core.backend;
    if (backend.wants('im.message')) {
      backend.emit('im.message', {
        id: m.id,
        conversation: m.conversation,
        seq: m.seq,
        sender: m.sender,
        kind: m.kind,
        time: m.time,
        data: JSON.parse(m.payload) as unknown,
        recipients,
      });
    }
    if (!backend.wants('im.offline_unread') || m.kind !== 'message') return;
    const others = recipients.filter((u) => u !== m.sender);
    if (others.length === 0) return;
    void (async () => {
      for (const rec of await this.presence.get(others)) {
        if (rec.state !== 'offline') continue;
        const c = await this.#store.cursor(rec.user);
        backend.emit('im.offline_unread', { user: rec.user, unread: c.head - c.acked, conversation: m.conversation, message: m.id, sender: m.sender });
      }
    })().catch((err) => this.#warn(err, 'offline webhook failed'));
  }

  async #memberEvent(conv: ConversationRecord, actor: string, event: Record<string, unknown>, extra: readonly string[]): Promise<void> {
    await this.#append(conv, actor, 'member', JSON.stringify(event), { extra });
  }

  async #receipt(user: string, conversation: string, kind: 'read' | 'delivered', seq: number): Promise<void> {
    let members = this.#directs.get(conversation);
    if (!members) {
      const conv = await this.#store.conversation(conversation);
      if (!conv || conv.memberCount > this.#cfg.largeGroupThreshold) return;
      members = (await this.#store.members(conversation)).map((m) => m.user);
      // A direct conversation's members never change: remember them (the receiving node of a cluster sends its receipts).
      if (conv.kind === 'direct') this.#rememberDirect(conversation, members);
    }
    const body = Buffer.from(JSON.stringify({ type: 'receipt', kind, conversation, user, seq }));
    for (const m of members) if (m !== user || kind === 'read') this.#emit(m, body);
  }

  /** Cache a direct conversation's members (bounded: cleared when it reaches 200,000). */
  #rememberDirect(id: string, members: readonly string[]): void {
    if (this.#directs.size >= 200_000) this.#directs.clear();
    this.#directs.set(id, members);
  }

  /** Publish a JSON body on a user's inbox channel (delivery.ts). */
  #emit(user: string, body: Buffer): void {
    this.#delivery.emit(user, body);
  }

  /** A user's first session on this node appeared: register it as a known user (once). */
  #seen(user: string): void {
    if (this.#known.has(user) || this.#registering.has(user)) return;
    const p = this.ready()
      .then(() => this.#store.upsertUser(user, undefined, { durable: false }))
      .then(() => this.#remember(user))
      .catch((err) => this.#warn(err, 'user registration failed'))
      .finally(() => this.#registering.delete(user));
    this.#registering.set(user, p);
  }

  #warn(err: unknown, msg: string): void {
    if (!this.#closed) this.#logger.warn({ err: String((err as Error)?.message ?? err) }, msg);
  }
}
