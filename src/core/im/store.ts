/**
 * The IM store engine interface: users, conversations (direct and group), members with their
 * cursors, messages with a per-conversation sequence, and a per-user inbox sequence so one cursor
 * syncs all of a user's conversations. SQLite is the single-node default; PostgreSQL implements
 * the same interface for a cluster. A new engine should be writable from these comments alone;
 * test/unit/im-store.test.ts is the suite every engine must pass.
 *
 * Every method resolves only once its effect is durable (committed). Methods never partially
 * apply: an error leaves the store as it was. Time values are ms since the Unix epoch.
 */

/** Kind of a conversation. */
export type ConversationKind = 'direct' | 'group';

/** Role of a member in a conversation. Direct conversations have two `member`s. */
export type MemberRole = 'owner' | 'admin' | 'member';

/** Kind of a conversation entry. `message` is what users write; the others are events. */
export type MessageKind = 'message' | 'recall' | 'edit' | 'member';

/** A stored conversation entry. */
export interface StoredMessage {
  /** Server message id (unique across the store). */
  readonly id: string;
  readonly conversation: string;
  /** Position in the conversation, from 1, gap-free, in commit order. */
  readonly seq: number;
  /** Author user id (the authenticated identity; for `member` events the actor). */
  readonly sender: string;
  readonly kind: MessageKind;
  /** JSON text of the payload (for `recall`: `null`). */
  readonly payload: string;
  /** For `recall` / `edit`: id of the message acted on. */
  readonly target?: string;
  /** Commit time. */
  readonly time: number;
  /** Set on a `message` that was later edited: time of the last edit. */
  readonly editedAt?: number;
  /** Set on a `message` that was later recalled (its payload is then `null`). */
  readonly recalled?: boolean;
}

/** One entry of a user's inbox: a message plus the user's inbox sequence for it. */
export interface InboxEntry {
  /** The user's inbox sequence, from 1, gap-free per user, in commit order. */
  readonly seq: number;
  readonly message: StoredMessage;
}

/** What to append to a conversation. */
export interface AppendInput {
  readonly conversation: string;
  readonly sender: string;
  /**
   * Idempotency key chosen by the sender's client. When an entry with the same `sender` and
   * `clientId` exists, nothing is written and that entry is returned with `duplicate: true`.
   */
  readonly clientId?: string;
  readonly kind: MessageKind;
  readonly payload: string;
  /**
   * For `recall` and `edit`: the id of a `message` of this conversation written by `sender` and
   * not recalled; `edit` replaces its payload (and sets editedAt), `recall` sets its payload to
   * `null`. Rejected with HERALD_ERR_IM_UNKNOWN_MESSAGE / HERALD_ERR_IM_NOT_ALLOWED otherwise.
   */
  readonly target?: string;
  /**
   * Users that get an inbox entry for this message, each with their next inbox sequence.
   * Members not listed (large groups) read it from the conversation timeline instead.
   */
  readonly recipients: readonly string[];
  /**
   * For `recall`: the target must have been written at or after this time, else the append is
   * rejected with HERALD_ERR_IM_RECALL_EXPIRED (the recall window, checked atomically).
   */
  readonly notBefore?: number;
}

/** Result of `append`. */
export interface AppendResult {
  readonly message: StoredMessage;
  /** Inbox sequence given to each recipient (empty for a duplicate). */
  readonly inbox: ReadonlyArray<{ readonly user: string; readonly seq: number }>;
  /** True when the idempotency key matched an existing entry: nothing was written. */
  readonly duplicate: boolean;
}

/** A member of a conversation. */
export interface MemberRecord {
  readonly user: string;
  readonly role: MemberRole;
  readonly joinedAt: number;
  /**
   * Conversation seq when the member joined (0 for the creator, the first members and direct
   * conversations): the member reads the timeline after it only (history before joining stays
   * hidden, as in Signal or WhatsApp).
   */
  readonly joinedSeq: number;
  /** Highest conversation seq the member has read (0 = none). */
  readonly readSeq: number;
  /** Highest conversation seq delivered to (acknowledged by) the member (0 = none). */
  readonly deliveredSeq: number;
}

/** A pending invitation of a user into a group (made when the inviter is not a mutual contact). */
export interface InviteRecord {
  readonly conversation: string;
  /** Who invited. */
  readonly inviter: string;
  readonly createdAt: number;
}

/** A conversation. */
export interface ConversationRecord {
  readonly id: string;
  readonly kind: ConversationKind;
  readonly title?: string;
  readonly createdAt: number;
  /** Seq of the newest entry (0 = empty). */
  readonly seq: number;
  readonly memberCount: number;
}

/** A conversation as listed for one user. */
export interface ConversationSummary extends ConversationRecord {
  readonly readSeq: number;
  /** `message` entries after readSeq written by others (recalled ones excluded). */
  readonly unread: number;
  /** Newest `message` entry, if any. */
  readonly last?: StoredMessage;
}

/** A user's inbox cursors. */
export interface InboxCursor {
  /** Inbox seq of the user's newest entry (0 = none). */
  readonly head: number;
  /** Highest inbox seq the user acknowledged (cumulative; 0 = none). */
  readonly acked: number;
}

/** A known user. */
export interface UserRecord {
  readonly id: string;
  readonly name?: string;
  readonly createdAt: number;
}

/** Result of `ack`. */
export interface AckResult {
  /** The cursor after the call (never moves backwards). */
  readonly acked: number;
  /** For entries newly acknowledged: per conversation, the highest conversation seq (delivery receipts). */
  readonly delivered: ReadonlyArray<{ readonly conversation: string; readonly seq: number }>;
}

/** The IM store. */
export interface ImStore {
  /** Open (create the schema when missing). Idempotent. */
  open(): Promise<void>;
  /** Flush pending writes and release the engine. */
  close(): Promise<void>;

  /**
   * Create the user or update its display name. Idempotent. Resolves once the row is durable,
   * or with `durable: false` once it is committed and visible to every read (an engine whose
   * commits sync to disk in order may answer before the sync: the row is then on disk with the
   * next durable write, or at close).
   */
  upsertUser(id: string, name?: string, options?: { durable?: boolean }): Promise<void>;
  /** The known users among `ids` (unknown ones are omitted). */
  users(ids: readonly string[]): Promise<UserRecord[]>;

  /**
   * Create a conversation with its members atomically. Fails with HERALD_ERR_CONFLICT when the
   * id exists. Direct conversations are created with `ensureDirect` instead.
   */
  createConversation(conv: {
    id: string;
    kind: ConversationKind;
    title?: string;
    members: ReadonlyArray<{ user: string; role: MemberRole }>;
  }): Promise<ConversationRecord>;
  /** Get the direct conversation `id` between `a` and `b`, creating it (both members) if needed. */
  ensureDirect(id: string, a: string, b: string): Promise<ConversationRecord>;
  /** A conversation, or undefined. */
  conversation(id: string): Promise<ConversationRecord | undefined>;
  /** A user's membership, or undefined when not a member. */
  member(conversation: string, user: string): Promise<MemberRecord | undefined>;
  /** All members, ordered by join time. */
  members(conversation: string): Promise<MemberRecord[]>;
  /**
   * Add members (existing ones keep their role) and drop their pending invites to this
   * conversation. New members join at the conversation's current seq (joinedSeq, readSeq and
   * deliveredSeq all start there). Returns the users actually added.
   */
  addMembers(conversation: string, members: ReadonlyArray<{ user: string; role: MemberRole }>): Promise<string[]>;
  /** Remove a member. Returns false when it was not a member. */
  removeMember(conversation: string, user: string): Promise<boolean>;
  /** Change a member's role. Returns false when it was not a member. */
  setRole(conversation: string, user: string, role: MemberRole): Promise<boolean>;
  /** Ids of the group conversations the user is a member of. */
  groupsOf(user: string): Promise<string[]>;
  /** How many group conversations the user is a member of (any role). */
  groupCount(user: string): Promise<number>;
  /**
   * The user's presence peers, each once, in no particular order, `user` excluded: its mutual
   * contacts (as `mutualContacts`) and the users sharing a group of at most `maxMembers` members
   * with it. One read: it runs whenever the user's presence changes (twice per login).
   */
  presencePeers(user: string, maxMembers: number): Promise<string[]>;

  /**
   * Record pending invitations of `users` into group `conversation` by `inviter`. Users already
   * members or already invited are skipped. Returns the users newly invited.
   */
  invite(conversation: string, inviter: string, users: readonly string[]): Promise<string[]>;
  /** The user's pending invitations, oldest first. */
  invites(user: string): Promise<InviteRecord[]>;
  /** Pending invitations into a conversation (count). */
  inviteCount(conversation: string): Promise<number>;
  /**
   * Accept atomically: when `user` has a pending invitation into `conversation`, delete it and
   * add `user` as a `member` (joining at the current seq, as `addMembers`). Returns false
   * (changing nothing) without an invitation.
   */
  acceptInvite(conversation: string, user: string): Promise<boolean>;
  /** Delete a pending invitation. Returns false when there was none. */
  removeInvite(conversation: string, user: string): Promise<boolean>;

  /**
   * Append an entry to a conversation atomically: check idempotency, give it the next
   * conversation seq, apply recall/edit to the target, and append an inbox entry for each
   * recipient with that user's next inbox seq. Appends to one conversation (and to one inbox)
   * are serialised: seqs are gap-free and ordered by commit. Concurrent calls may be committed
   * together (group commit) but each succeeds or fails alone.
   */
  append(input: AppendInput): Promise<AppendResult>;
  /** A message by id, or undefined. */
  message(id: string): Promise<StoredMessage | undefined>;
  /** Inbox entries with seq > `after`, oldest first, at most `limit`. */
  inbox(user: string, after: number, limit: number): Promise<InboxEntry[]>;
  /** The user's inbox head and acknowledged cursor ({0,0} for a user with no inbox). */
  cursor(user: string): Promise<InboxCursor>;
  /**
   * Move the acknowledged cursor to max(current, min(seq, head)) and raise each affected
   * member's deliveredSeq accordingly.
   */
  ack(user: string, seq: number): Promise<AckResult>;
  /**
   * Page a conversation by seq: `after` gives entries with seq > after ascending; otherwise
   * entries with seq < `before` (default: newest) descending. At most `limit`.
   */
  history(conversation: string, query: { before?: number; after?: number; limit: number }): Promise<StoredMessage[]>;
  /** The user's conversations, most recently active first, with unread counts and the last message. */
  conversations(user: string, limit: number): Promise<ConversationSummary[]>;
  /** Raise the member's deliveredSeq to max(current, seq) (large groups, acked by conversation). */
  markDelivered(conversation: string, user: string, seq: number): Promise<void>;
  /** Raise the member's readSeq to max(current, min(seq, conversation seq)); returns the new value. */
  markRead(conversation: string, user: string, seq: number): Promise<number>;

  /** Add a contact (one-way). Idempotent. */
  addContact(user: string, contact: string): Promise<void>;
  /** Remove a contact. Returns false when absent. */
  removeContact(user: string, contact: string): Promise<boolean>;
  /** The user's contacts, sorted. */
  contacts(user: string): Promise<string[]>;
  /** Users who have `user` as a contact. */
  contactOf(user: string): Promise<string[]>;
  /** Users who are contacts of `user` and have `user` as a contact (mutual), sorted. */
  mutualContacts(user: string): Promise<string[]>;
  /** How many contacts the user has. */
  contactCount(user: string): Promise<number>;
}
