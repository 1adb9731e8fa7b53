/**
 * What the backend may do to the IM through the trusted server API (api/backend-api.ts): send
 * as the system user, manage groups as their owner, replace contact lists. The rules live here,
 * behind the IM facade (`ImService.admin`); the API only parses requests.
 */
import { HeraldError } from '../errors.js';
import type { GroupChangeOptions } from './groups.js';
import type { ConversationRecord, ImStore, MemberRecord, MemberRole } from './store.js';

/** The parts of the IM facade (ImService) that the backend's operations go through. */
export interface ImFacade {
  ready(): Promise<void>;
  registerUser(id: string): Promise<void>;
  send(user: string, p: { to?: string; conversation?: string; clientId?: string; data: unknown }, options?: { system?: boolean }): Promise<object>;
  createGroup(user: string, p: { title?: string; members: readonly string[] }, o?: GroupChangeOptions): Promise<{ conv: ConversationRecord }>;
  addMembers(user: string, group: string, users: readonly string[], o?: GroupChangeOptions): Promise<{ added: string[] }>;
  removeMember(user: string, group: string, target: string, o?: GroupChangeOptions): Promise<void>;
  setRole(user: string, group: string, target: string, role: MemberRole, o?: GroupChangeOptions): Promise<void>;
}

/** The backend changes groups directly: no invitations, rate limit or per-user caps. */
const DIRECT: GroupChangeOptions = { direct: true };

/** A system message: exactly one of `to`, `users` or `conversation`. */
export interface SystemMessage {
  readonly to?: string;
  readonly users?: readonly string[];
  readonly conversation?: string;
  /** Idempotency key (per recipient with `users`: `<clientId>:<user>`). */
  readonly clientId?: string;
  readonly data: unknown;
}

/** The backend's IM operations of one node. */
export class ImAdmin {
  readonly #im: ImFacade;
  readonly #store: ImStore;
  readonly #system: string;

  /** Built by ImService, which hands over its store. */
  constructor(im: ImFacade, store: ImStore, systemUser: string) {
    this.#im = im;
    this.#store = store;
    this.#system = systemUser;
  }

  /**
   * Send as the system user: to one user, to each of several users (one ack per user), or into
   * a group, which the system joins as admin the first time it speaks there. Recipients become
   * known users.
   */
  async sendAsSystem(m: SystemMessage): Promise<object> {
    const im = this.#im;
    const system = this.#system;
    await im.registerUser(system);
    if (m.users) {
      const results = [];
      for (const u of new Set(m.users)) {
        await im.registerUser(u);
        results.push({ user: u, ...(await im.send(system, { to: u, clientId: m.clientId && `${m.clientId}:${u}`, data: m.data }, { system: true })) });
      }
      return { results };
    }
    if (m.to) await im.registerUser(m.to);
    if (m.conversation) {
      await this.ownerOf(m.conversation);
      if (!(await this.#store.member(m.conversation, system))) await this.#store.addMembers(m.conversation, [{ user: system, role: 'admin' }]);
    }
    return im.send(system, { to: m.to, conversation: m.conversation, clientId: m.clientId, data: m.data }, { system: true });
  }

  /** Create a group owned by `owner` (every user named becomes known and a member: the backend needs no consent). */
  async createGroup(owner: string, title: string | undefined, members: readonly string[]): Promise<{ group: string; title?: string; memberCount: number }> {
    for (const u of [owner, ...members]) await this.#im.registerUser(u);
    const { conv: g } = await this.#im.createGroup(owner, { title, members }, DIRECT);
    return { group: g.id, title: g.title, memberCount: g.memberCount };
  }

  /** Add and remove members of a group, acting as its owner; removing the owner makes it leave. */
  async changeMembers(group: string, add: readonly string[], remove: readonly string[]): Promise<{ added: string[]; removed: string[] }> {
    const owner = await this.ownerOf(group);
    for (const u of add) await this.#im.registerUser(u);
    const added = add.length ? (await this.#im.addMembers(owner, group, add, DIRECT)).added : [];
    const removed: string[] = [];
    for (const u of remove) {
      if (await this.#store.member(group, u)) {
        await this.#im.removeMember(u === owner ? u : owner, group, u, DIRECT);
        removed.push(u);
      }
    }
    return { added, removed };
  }

  /** A group's members. */
  async members(group: string): Promise<MemberRecord[]> {
    await this.ownerOf(group);
    return this.#store.members(group);
  }

  /** Give a member a role, acting as the owner. Ownership moves by giving another member `owner`. */
  async setRole(group: string, user: string, role: MemberRole): Promise<void> {
    const owner = await this.ownerOf(group);
    if (user === owner) {
      if (role !== 'owner') throw new HeraldError('HERALD_ERR_IM_NOT_ALLOWED', 'Transfer ownership by giving another member the owner role');
      return;
    }
    await this.#im.setRole(owner, group, user, role, DIRECT);
  }

  /** Replace a user's contact list (contacts become known users). */
  async setContacts(user: string, contacts: readonly string[]): Promise<{ added: number; removed: number }> {
    const im = this.#im;
    await im.registerUser(user);
    const want = new Set(contacts.filter((c) => c !== user));
    for (const c of want) await im.registerUser(c);
    const have = new Set(await this.#store.contacts(user));
    let added = 0;
    let removed = 0;
    for (const c of want) if (!have.has(c) && ++added) await this.#store.addContact(user, c);
    for (const c of have) if (!want.has(c) && ++removed) await this.#store.removeContact(user, c);
    return { added, removed };
  }

  /** The owner of a group: the backend acts as the owner (the API is trusted with every group). */
  async ownerOf(group: string): Promise<string> {
    await this.#im.ready();
    const conv = await this.#store.conversation(group);
    if (!conv || conv.kind !== 'group') throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION', 'Unknown group');
    const owner = (await this.#store.members(group)).find((m) => m.role === 'owner');
    if (!owner) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION', 'Group has no owner');
    return owner.user;
  }
}
