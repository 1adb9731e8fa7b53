/**
 * Contacts and who sees whose presence (part of the IM facade, `ImService` delegates here).
 *
 * Presence (state, status text, last seen) flows only between **presence peers**: two users who
 * have each other as contacts (mutual, like an XMPP subscription `both`), or who are both members
 * of a group of at most `im.largeGroupThreshold` members. Anyone else reading a user's presence
 * gets exactly what an unknown user gives (`{user, state: 'offline'}`), so presence reads neither
 * leak a state nor tell known users from unknown ones. The trusted server API reads presence
 * unmasked.
 *
 * Adding a contact is one-way and needs no consent: it is the user's wish to see the other's
 * presence, which starts only once the other adds the user back. It answers the same for known
 * and unknown ids (a contact may be a user who has not signed up yet, as in an XMPP roster), so
 * it cannot be used to enumerate users; at most `im.maxContacts` per user.
 */
import type { HeraldCore } from '../core.js';
import { HeraldError } from '../errors.js';
import { USER_ID_RE } from '../user-id.js';
import type { ChosenState, PresenceRecord, PresenceStore } from './presence.js';
import type { ImStore } from './store.js';

/** What the contacts part needs from the IM facade. */
export interface ContactsHost {
  readonly store: ImStore;
  readonly presence: PresenceStore;
  readonly core: HeraldCore;
  /** Open the store (lazily). */
  ready(): Promise<void>;
  /** Publish an event on a user's inbox channel (fire and forget). */
  emit(user: string, body: Buffer): void;
  /** Whether the facade is closed (no more announcements). */
  closed(): boolean;
}

/** The presence record shown to a user who may not see `user`: the same as for an unknown user. */
function hidden(user: string): PresenceRecord {
  return { user, state: 'offline' };
}

/** Contacts and presence visibility of one node. */
export class ImContacts {
  readonly #h: ContactsHost;
  readonly #cfg: HeraldCore['config']['im'];

  constructor(host: ContactsHost) {
    this.#h = host;
    this.#cfg = host.core.config.im;
  }

  /** The user's presence peers: mutual contacts and members of its small groups (itself excluded). */
  async peers(user: string): Promise<Set<string>> {
    return new Set(await this.#h.store.presencePeers(user, this.#cfg.largeGroupThreshold));
  }

  /**
   * Presence of `users` as `viewer` may see it: its own and its peers' records as they are,
   * everyone else's as for an unknown user. Without a viewer (the server API), unmasked.
   */
  async get(viewer: string | undefined, users: readonly string[]): Promise<PresenceRecord[]> {
    if (viewer === undefined) return this.#h.presence.get(users);
    // Nothing to mask (a login's empty contact list): no peer lookup.
    if (users.length === 0) return [];
    await this.#h.ready();
    const peers = await this.peers(viewer);
    peers.add(viewer);
    const visible = users.filter((u) => peers.has(u));
    const recs = new Map((visible.length ? await this.#h.presence.get(visible) : []).map((r) => [r.user, r]));
    return users.map((u) => recs.get(u) ?? hidden(u));
  }

  /** Set the user's chosen state and status text; its peers are told. */
  async set(user: string, state: ChosenState, status?: string): Promise<PresenceRecord> {
    const rec = await this.#h.presence.setChosen(user, state, status);
    await this.announce(rec);
    return rec;
  }

  /** Push a presence change to the user's peers (and to the backend's `presence` webhook). */
  async announce(rec: PresenceRecord): Promise<void> {
    if (this.#h.closed()) return;
    this.#h.core.backend.emit('presence', { ...rec });
    await this.#h.ready();
    const to = await this.peers(rec.user);
    if (to.size === 0) return;
    const body = Buffer.from(JSON.stringify({ type: 'presence', ...rec }));
    for (const u of to) this.#h.emit(u, body);
  }

  /**
   * Add a contact (one-way). Answers the same whether `contact` is a known user or not. When the
   * two become mutual contacts, each is pushed the other's presence at once.
   */
  async add(user: string, contact: string): Promise<void> {
    if (contact === user) throw new HeraldError('HERALD_ERR_BAD_REQUEST', "One is not one's own contact");
    if (!USER_ID_RE.test(contact)) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Invalid user id');
    await this.#h.ready();
    const store = this.#h.store;
    if ((await store.contactCount(user)) >= this.#cfg.maxContacts && !(await store.contacts(user)).includes(contact)) {
      throw new HeraldError('HERALD_ERR_IM_TOO_MANY_CONTACTS', `At most ${this.#cfg.maxContacts} contacts`);
    }
    await store.addContact(user, contact);
    if ((await store.contacts(contact)).includes(user)) await this.share(user, [contact]);
  }

  /** Remove a contact; when that ends the pair's presence sharing, each sees the other offline. */
  async remove(user: string, contact: string): Promise<boolean> {
    await this.#h.ready();
    // Only a pair that shared presence is told: a one-way contact's removal tells the other nothing.
    const wasMutual = (await this.#h.store.contacts(contact)).includes(user);
    const removed = await this.#h.store.removeContact(user, contact);
    if (removed && wasMutual && !(await this.peers(user)).has(contact)) {
      this.#h.emit(user, Buffer.from(JSON.stringify({ type: 'presence', ...hidden(contact) })));
      this.#h.emit(contact, Buffer.from(JSON.stringify({ type: 'presence', ...hidden(user) })));
    }
    return removed;
  }

  /** The user's contacts with their presence as the user may see it (`raw`: unmasked, for the server API). */
  async list(user: string, raw = false): Promise<PresenceRecord[]> {
    await this.#h.ready();
    const contacts = await this.#h.store.contacts(user);
    return raw ? this.#h.presence.get(contacts) : this.get(user, contacts);
  }

  /** The user's mutual contacts (each has the other as a contact): they share presence and join each other's groups directly. */
  async mutual(user: string): Promise<Set<string>> {
    return new Set(await this.#h.store.mutualContacts(user));
  }

  /**
   * `user` just became a presence peer of `others` (mutual contacts, or joined a small group):
   * push the user's presence to each of them and each one's to the user, so nobody waits for
   * the next change to see the other.
   */
  async share(user: string, others: readonly string[]): Promise<void> {
    const rest = others.filter((o) => o !== user);
    if (rest.length === 0 || this.#h.closed()) return;
    for (const rec of await this.#h.presence.get([user, ...rest])) {
      const body = Buffer.from(JSON.stringify({ type: 'presence', ...rec }));
      if (rec.user === user) for (const o of rest) this.#h.emit(o, body);
      else this.#h.emit(user, body);
    }
  }
}
