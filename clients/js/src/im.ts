/**
 * The IM API on top of a HeraldClient: subscribes to the user's inbox channel, delivers every
 * message once and in inbox order (live, re-delivered or synced after being offline),
 * acknowledges cumulatively for the application, and sends with an idempotency key that is
 * reused across retries so a retried send never duplicates.
 */
import type { HeraldClient } from './client.js';
import { Emitter } from './emitter.js';
import { HeraldClientError } from './errors.js';
import type { Subscription } from './subscription.js';

/** A stored message as the server sends it. */
export interface ImMessage<T = unknown> {
  readonly id: string;
  readonly conversation: string;
  /** Position in the conversation (from 1, gap-free). */
  readonly seq: number;
  readonly from: string;
  readonly kind: 'message' | 'recall' | 'edit' | 'member';
  readonly time: number;
  readonly data: T;
  /** For recall/edit: the id of the message acted on. */
  readonly target?: string;
  readonly editedAt?: number;
  readonly recalled?: boolean;
}

/** Payload of the `message` event. */
export interface ImMessageEvent {
  readonly message: ImMessage;
  /** Inbox sequence (absent for live messages of large groups). */
  readonly inboxSeq?: number;
  /** True when the message came from a sync (it arrived while this client was offline). */
  readonly offline: boolean;
}

/** Presence of a user. */
export interface ImPresence {
  readonly user: string;
  readonly state: 'online' | 'away' | 'busy' | 'offline';
  readonly status?: string;
  readonly lastSeen?: number;
}

/** A conversation as listed for the user. */
export interface ImConversation {
  readonly id: string;
  readonly kind: 'direct' | 'group';
  readonly title?: string;
  readonly createdAt: number;
  readonly seq: number;
  readonly memberCount: number;
  readonly readSeq: number;
  readonly unread: number;
  readonly last?: ImMessage;
}

/** A group member. */
export interface ImMember {
  readonly user: string;
  readonly role: 'owner' | 'admin' | 'member';
  readonly joinedAt: number;
  /** Conversation seq the member joined at: its history starts after it. */
  readonly joinedSeq: number;
  readonly readSeq: number;
  readonly deliveredSeq: number;
}

/** A pending group invitation (from someone who is not a mutual contact). */
export interface ImInvite {
  readonly group: string;
  readonly title?: string;
  /** Who invited. */
  readonly from: string;
  readonly time: number;
}

/** The sender's ack of a send. */
export interface ImSendAck {
  readonly id: string;
  readonly conversation: string;
  readonly seq: number;
  readonly time: number;
  readonly duplicate: boolean;
}

/** Events of the IM client. */
export type ImEvents = {
  message: ImMessageEvent;
  receipt: { readonly kind: 'read' | 'delivered'; readonly conversation: string; readonly user: string; readonly seq: number };
  typing: { readonly conversation: string; readonly user: string };
  presence: ImPresence;
  /** Someone invited the user into a group: `acceptInvite` or `declineInvite`. */
  invite: ImInvite;
  /** A sync finished (after connecting or a gap); `count` messages came from it. */
  synced: { readonly count: number };
  error: { readonly error: Error };
};

/** Options of `new ImClient()`. */
export interface ImClientOptions {
  /** Delay before a cumulative ack is sent, ms (default 50), so bursts share one ack. */
  readonly ackDelayMs?: number;
  /** How long `send` keeps retrying a temporary failure, ms (default 30000). */
  readonly sendTimeoutMs?: number;
}

/** Where to send: a user (direct conversation) or a conversation/group id. */
export type ImTarget = { readonly to: string } | { readonly conversation: string };

const newClientId = (): string => {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  return c?.randomUUID ? c.randomUUID() : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** IM on one HeraldClient. Call `start()` once. */
export class ImClient extends Emitter<ImEvents> {
  readonly client: HeraldClient;
  #user: string | undefined;
  #sub: Subscription | undefined;
  /** Highest inbox seq with every lower seq delivered to the application (undefined before the first sync). */
  #contiguous: number | undefined;
  readonly #ahead = new Map<number, ImMessage>();
  #acked = 0;
  #ackTimer: ReturnType<typeof setTimeout> | undefined;
  #syncing: Promise<void> | undefined;
  #syncAgain = false;
  readonly #ackDelayMs: number;
  readonly #sendTimeoutMs: number;

  constructor(client: HeraldClient, options: ImClientOptions = {}) {
    super();
    this.client = client;
    this.#ackDelayMs = options.ackDelayMs ?? 50;
    this.#sendTimeoutMs = options.sendTimeoutMs ?? 30_000;
  }

  /** The signed-in user (after `start()`). */
  get user(): string | undefined {
    return this.#user;
  }

  /** Connect (if needed), subscribe to the inbox and sync what arrived while offline. */
  async start(): Promise<void> {
    if (this.#sub) return;
    await this.client.connect();
    const user = this.client.info?.user;
    if (!user) throw new HeraldClientError(0, 'NO_IDENTITY', 'IM needs an authenticated user', false);
    this.#user = user;
    const sub = this.client.subscribe(`inbox:${user}`);
    this.#sub = sub;
    sub.on('publication', (p) => this.#onInbox(p.data as Record<string, unknown>));
    // Every (re)subscribe: the inbox keeps no channel history, so read what was missed from the store.
    sub.on('subscribed', () => this.#requestSync());
    sub.on('error', (e) => this.emit('error', { error: e.error }));
    await sub.ready();
    await this.#syncing;
  }

  /** Stop receiving (the client stays connected). */
  stop(): void {
    this.#sub?.unsubscribe();
    this.#sub = undefined;
    if (this.#ackTimer) clearTimeout(this.#ackTimer);
  }

  // ---- receiving ----------------------------------------------------------------------------

  #onInbox(ev: Record<string, unknown>): void {
    switch (ev.type) {
      case 'message':
        this.#accept(ev.message as ImMessage, ev.seq as number | undefined, false);
        break;
      case 'receipt':
        this.emit('receipt', ev as unknown as ImEvents['receipt']);
        break;
      case 'typing':
        this.emit('typing', ev as unknown as ImEvents['typing']);
        break;
      case 'presence':
        this.emit('presence', ev as unknown as ImPresence);
        break;
      case 'invite':
        this.emit('invite', ev as unknown as ImInvite);
        break;
      default:
        break;
    }
  }

  /** Deliver in inbox order, each seq once; a gap triggers a sync. */
  #accept(message: ImMessage, seq: number | undefined, offline: boolean): boolean {
    if (seq === undefined) {
      this.emit('message', { message, offline });
      return true;
    }
    if (this.#contiguous === undefined) {
      // Before the first sync: hold everything; the sync decides where the inbox starts.
      this.#ahead.set(seq, message);
      return false;
    }
    if (seq <= this.#contiguous) {
      // A re-delivery of something already delivered: the server still waits for our ack.
      if (seq > this.#acked || this.#acked < this.#contiguous) this.#scheduleAck();
      return false;
    }
    if (seq > this.#contiguous + 1) {
      this.#ahead.set(seq, message);
      this.#requestSync();
      return false;
    }
    this.#contiguous = seq;
    this.emit('message', { message, inboxSeq: seq, offline });
    this.#drain(offline);
    this.#scheduleAck();
    return true;
  }

  #drain(offline: boolean): void {
    if (this.#contiguous === undefined) return;
    for (const s of [...this.#ahead.keys()].sort((a, b) => a - b)) {
      if (s <= this.#contiguous) {
        this.#ahead.delete(s);
        continue;
      }
      if (s !== this.#contiguous + 1) break;
      const m = this.#ahead.get(s)!;
      this.#ahead.delete(s);
      this.#contiguous = s;
      this.emit('message', { message: m, inboxSeq: s, offline });
    }
  }

  #requestSync(): void {
    if (this.#syncing) {
      this.#syncAgain = true;
      return;
    }
    this.#syncing = (async () => {
      do {
        this.#syncAgain = false;
        try {
          await this.#sync();
        } catch (err) {
          this.emit('error', { error: err as Error });
        }
      } while (this.#syncAgain);
    })().finally(() => {
      this.#syncing = undefined;
    });
  }

  async #sync(): Promise<void> {
    let count = 0;
    for (;;) {
      const params: Record<string, unknown> = {};
      if (this.#contiguous !== undefined) params.after = this.#contiguous;
      const r = (await this.client.command('im.sync', params)) as {
        messages: Array<{ seq: number; message: ImMessage }>;
        acked: number;
        more: boolean;
        groups: Array<{ conversation: string; seq: number; deliveredSeq: number }>;
      };
      if (this.#contiguous === undefined) {
        this.#contiguous = r.acked;
        this.#acked = r.acked;
      }
      for (const m of r.messages) if (this.#accept(m.message, m.seq, true)) count++;
      this.#drain(true);
      for (const g of r.groups) count += await this.#syncGroup(g.conversation, g.deliveredSeq);
      if (!r.more) break;
    }
    this.#scheduleAck();
    this.emit('synced', { count });
  }

  /** Large groups have no inbox entries: page their timeline past the delivered cursor and ack it. */
  async #syncGroup(conversation: string, after: number): Promise<number> {
    let count = 0;
    let cursor = after;
    for (;;) {
      const page = await this.history(conversation, { after: cursor, limit: 200 });
      for (const m of page) this.emit('message', { message: m, offline: true });
      count += page.length;
      if (page.length === 0) break;
      cursor = page.at(-1)!.seq;
      if (page.length < 200) break;
    }
    if (cursor > after) await this.client.command('im.ack', { conversation, seq: cursor });
    return count;
  }

  #scheduleAck(): void {
    if (this.#ackTimer) return;
    this.#ackTimer = setTimeout(() => {
      this.#ackTimer = undefined;
      const seq = this.#contiguous ?? 0;
      if (seq <= 0) return;
      this.client.command('im.ack', { seq }).then(
        (r) => {
          this.#acked = Math.max(this.#acked, (r as { acked: number }).acked);
        },
        () => undefined, // the next delivery or sync acks again
      );
    }, this.#ackDelayMs);
  }

  // ---- commands -----------------------------------------------------------------------------

  /**
   * Send a message. The idempotency key (`clientId`) is generated once and reused for every
   * retry, so a retry after a lost reply returns the original ack (`duplicate: true`).
   */
  async send(target: ImTarget, data: unknown, options: { clientId?: string } = {}): Promise<ImSendAck> {
    const clientId = options.clientId ?? newClientId();
    const deadline = Date.now() + this.#sendTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return (await this.client.command('im.send', { ...target, clientId, data })) as ImSendAck;
      } catch (err) {
        const temporary = err instanceof HeraldClientError && err.temporary;
        if (!temporary || Date.now() > deadline) throw err;
        await sleep(Math.min(2_000, 100 * 2 ** attempt));
      }
    }
  }

  /** Conversations with unread counts and last messages. */
  async conversations(limit?: number): Promise<ImConversation[]> {
    const r = (await this.client.command('im.conversations', limit === undefined ? {} : { limit })) as { conversations: ImConversation[] };
    return r.conversations;
  }

  /**
   * Page a conversation: up to `limit` messages `before` a seq (older pages; default the newest)
   * or `after` one. Always returned in ascending seq order.
   */
  async history(conversation: string, q: { before?: number; after?: number; limit?: number } = {}): Promise<ImMessage[]> {
    const r = (await this.client.command('im.history', { conversation, ...q })) as { messages: ImMessage[] };
    return [...r.messages].sort((x, y) => x.seq - y.seq);
  }

  /** Mark a conversation read up to `seq` (members get a read receipt). */
  async read(conversation: string, seq: number): Promise<number> {
    return ((await this.client.command('im.read', { conversation, seq })) as { readSeq: number }).readSeq;
  }

  /** Tell the other members the user is typing. */
  async typing(conversation: string): Promise<void> {
    await this.client.command('im.typing', { conversation });
  }

  /** Recall one's own message. */
  recall(message: string): Promise<ImSendAck> {
    return this.client.command('im.recall', { message, clientId: newClientId() }) as Promise<ImSendAck>;
  }

  /** Replace the payload of one's own message. */
  edit(message: string, data: unknown): Promise<ImSendAck> {
    return this.client.command('im.edit', { message, data, clientId: newClientId() }) as Promise<ImSendAck>;
  }

  /** Set the user's presence state and status text. */
  setPresence(state: 'online' | 'away' | 'busy', status?: string): Promise<ImPresence> {
    return this.client.command('im.presence.set', status === undefined ? { state } : { state, status }) as Promise<ImPresence>;
  }

  /** Presence of users. */
  async getPresence(users: string[]): Promise<ImPresence[]> {
    return ((await this.client.command('im.presence.get', { users })) as { presence: ImPresence[] }).presence;
  }

  /** Create a group with the user as owner: mutual contacts join, the others named are `invited`. */
  createGroup(members: string[], title?: string): Promise<{ group: string; title?: string; memberCount: number; invited: string[] }> {
    return this.client.command('im.group.create', title === undefined ? { members } : { members, title }) as Promise<{
      group: string;
      title?: string;
      memberCount: number;
      invited: string[];
    }>;
  }

  /** Add members to a group: mutual contacts are `added`, the others `invited`. */
  addMembers(group: string, members: string[]): Promise<{ added: string[]; invited: string[] }> {
    return this.client.command('im.group.add', { group, members }) as Promise<{ added: string[]; invited: string[] }>;
  }

  /** Accept a pending invitation: the user joins (and reads the group from now on). */
  acceptInvite(group: string): Promise<{ group: string; title?: string; memberCount: number }> {
    return this.client.command('im.group.accept', { group }) as Promise<{ group: string; title?: string; memberCount: number }>;
  }

  /** Decline a pending invitation. */
  async declineInvite(group: string): Promise<void> {
    await this.client.command('im.group.decline', { group });
  }

  /** The user's pending invitations, oldest first. */
  async invites(): Promise<ImInvite[]> {
    return ((await this.client.command('im.group.invites', {})) as { invites: ImInvite[] }).invites;
  }

  /** Remove a member from a group. */
  async removeMember(group: string, user: string): Promise<void> {
    await this.client.command('im.group.remove', { group, user });
  }

  /** Leave a group. */
  async leaveGroup(group: string): Promise<void> {
    await this.client.command('im.group.leave', { group });
  }

  /** Change a member's role. */
  async setRole(group: string, user: string, role: 'owner' | 'admin' | 'member'): Promise<void> {
    await this.client.command('im.group.role', { group, user, role });
  }

  /** Members of a group. */
  async members(group: string): Promise<ImMember[]> {
    return ((await this.client.command('im.group.members', { group })) as { members: ImMember[] }).members;
  }

  /** Add a contact; presence is shared (and pushed) once the other user adds this one back. */
  async addContact(user: string): Promise<void> {
    await this.client.command('im.contacts.add', { user });
  }

  /** Remove a contact. */
  async removeContact(user: string): Promise<boolean> {
    return ((await this.client.command('im.contacts.remove', { user })) as { removed: boolean }).removed;
  }

  /** Contacts with their presence (`offline` for contacts who have not added the user back). */
  async contacts(): Promise<ImPresence[]> {
    return ((await this.client.command('im.contacts.list', {})) as { contacts: ImPresence[] }).contacts;
  }
}
