/**
 * Groups: creation, membership with consent, roles (part of the IM facade, `ImService`
 * delegates here).
 *
 * - **Consent.** A user adds to a group, directly, only its mutual contacts (both have each other
 *   as contacts). Anyone else named is **invited**: a pending invitation is stored, the invitee is
 *   pushed `{"type":"invite","group","title","from","time"}` and joins with `im.group.accept` (or
 *   drops it with `im.group.decline`). Until then the invitee gets no group messages, no inbox
 *   rows, and shares no presence with the members. The backend (server API) adds directly.
 * - **Bounds.** Group changes (all but declining) take a token of `im.groupOpsPerSecond` per user; a user is a member
 *   of at most `im.maxGroupsPerUser` groups and holds at most `im.maxPendingInvites` invitations;
 *   members plus pending invitations stay within `im.maxGroupSize`. The backend is not rate
 *   limited nor bound by the per-user caps.
 * - **History.** Members read the timeline from the seq they joined at (MemberRecord.joinedSeq);
 *   the facade's `history` applies it.
 */
import { randomBytes } from 'node:crypto';
import type { HeraldCore } from '../core.js';
import { HeraldError } from '../errors.js';
import { RateLimiter } from './rate-limit.js';
import type { ConversationRecord, ImStore, MemberRecord, MemberRole } from './store.js';

/** What the group part needs from the IM facade. */
export interface GroupsHost {
  readonly store: ImStore;
  readonly core: HeraldCore;
  /** The conversation and the user's membership; throws UNKNOWN_CONVERSATION / NOT_MEMBER. */
  membership(user: string, conversation: string, groupOnly?: boolean): Promise<{ conv: ConversationRecord; member: MemberRecord }>;
  /** Append a `member` event; `extra` users get an inbox entry even in a large group. */
  memberEvent(conv: ConversationRecord, actor: string, event: Record<string, unknown>, extra: readonly string[]): Promise<void>;
  /** Throws HERALD_ERR_IM_UNKNOWN_USER for the first user not known. */
  assertKnown(users: readonly string[]): Promise<void>;
  /** The user's mutual contacts. */
  mutualContacts(user: string): Promise<Set<string>>;
  /** Publish an event on a user's inbox channel (fire and forget). */
  emit(user: string, body: Buffer): void;
  /** Push `user` and `others` each other's presence (they just became presence peers). */
  sharePresence(user: string, others: readonly string[]): Promise<void>;
}

/** How a group change is made: by a user (consent, rate and caps apply) or by the backend (`direct`). */
export interface GroupChangeOptions {
  /** The trusted server API: everyone named becomes a member at once, no rate limit or per-user cap. */
  readonly direct?: boolean;
}

/** A pending invitation as the invitee lists it. */
export interface InviteView {
  readonly group: string;
  readonly title?: string;
  readonly from: string;
  readonly time: number;
}

/** The group rules of one node. */
export class ImGroups {
  readonly #h: GroupsHost;
  readonly #store: ImStore;
  readonly #cfg: HeraldCore['config']['im'];
  readonly #ops: RateLimiter;

  constructor(host: GroupsHost) {
    this.#h = host;
    this.#store = host.store;
    this.#cfg = host.core.config.im;
    this.#ops = new RateLimiter(this.#cfg.groupOpsPerSecond);
  }

  /** Create a group with the caller as owner; mutual contacts join, others are invited. */
  async create(
    user: string,
    p: { title?: string; members: readonly string[] },
    o: GroupChangeOptions = {},
  ): Promise<{ conv: ConversationRecord; invited: string[] }> {
    if (!o.direct) {
      this.#take(user);
      await this.#assertRoom(user);
    }
    const others = [...new Set(p.members)].filter((u) => u !== user);
    if (others.length + 1 > this.#cfg.maxGroupSize) throw new HeraldError('HERALD_ERR_IM_GROUP_FULL', `At most ${this.#cfg.maxGroupSize} members`);
    await this.#h.assertKnown(others);
    const { join, invite } = await this.#split(user, others, o);
    const id = `g:${randomBytes(8).toString('hex')}`;
    const conv = await this.#store.createConversation({
      id,
      kind: 'group',
      title: p.title,
      members: [{ user, role: 'owner' }, ...join.map((u) => ({ user: u, role: 'member' as const }))],
    });
    await this.#h.memberEvent(conv, user, { action: 'created', title: p.title, members: [user, ...join] }, []);
    const invited = await this.#invite(conv, user, invite);
    return { conv: (await this.#store.conversation(id)) ?? conv, invited };
  }

  /** Add members (owner or admin): mutual contacts join, others are invited. */
  async add(user: string, group: string, users: readonly string[], o: GroupChangeOptions = {}): Promise<{ added: string[]; invited: string[] }> {
    const { conv, member } = await this.#h.membership(user, group, true);
    if (member.role === 'member') throw new HeraldError('HERALD_ERR_IM_NOT_ALLOWED', 'Only owners and admins add members');
    if (!o.direct) this.#take(user);
    const list = [...new Set(users)];
    await this.#h.assertKnown(list);
    const existing = new Set((await this.#store.members(group)).map((m) => m.user));
    const fresh = list.filter((u) => !existing.has(u));
    const pending = o.direct ? 0 : await this.#store.inviteCount(group);
    if (conv.memberCount + pending + fresh.length > this.#cfg.maxGroupSize) {
      throw new HeraldError('HERALD_ERR_IM_GROUP_FULL', `At most ${this.#cfg.maxGroupSize} members (pending invitations included)`);
    }
    const { join, invite } = await this.#split(user, fresh, o);
    const added = join.length
      ? await this.#store.addMembers(
          group,
          join.map((u) => ({ user: u, role: 'member' as MemberRole })),
        )
      : [];
    if (added.length) {
      await this.#h.memberEvent(conv, user, { action: 'added', users: added }, added);
      await this.#shareIfSmall(group, added);
    }
    return { added, invited: await this.#invite(conv, user, invite) };
  }

  /** Accept a pending invitation: the user joins as a member (from the current seq on). */
  async accept(user: string, group: string): Promise<ConversationRecord> {
    this.#take(user);
    const conv = await this.#store.conversation(group);
    // The same answer for no such group and no invitation: an invitee learns of groups only by invitation.
    if (!conv || conv.kind !== 'group' || !(await this.#hasInvite(user, group))) throw new HeraldError('HERALD_ERR_IM_NO_INVITE');
    await this.#assertRoom(user);
    if (conv.memberCount >= this.#cfg.maxGroupSize) throw new HeraldError('HERALD_ERR_IM_GROUP_FULL', `At most ${this.#cfg.maxGroupSize} members`);
    if (!(await this.#store.acceptInvite(group, user))) throw new HeraldError('HERALD_ERR_IM_NO_INVITE');
    await this.#h.memberEvent(conv, user, { action: 'joined', user }, [user]);
    await this.#shareIfSmall(group, [user]);
    return (await this.#store.conversation(group)) ?? conv;
  }

  /** Decline (drop) a pending invitation. Not rate limited: it only deletes, and a spammed user may have many. */
  async decline(user: string, group: string): Promise<void> {
    if (!(await this.#store.removeInvite(group, user))) throw new HeraldError('HERALD_ERR_IM_NO_INVITE');
  }

  /** The user's pending invitations, oldest first. */
  async invites(user: string): Promise<InviteView[]> {
    const out: InviteView[] = [];
    for (const i of await this.#store.invites(user)) {
      const conv = await this.#store.conversation(i.conversation);
      if (conv) out.push({ group: i.conversation, ...(conv.title !== undefined ? { title: conv.title } : {}), from: i.inviter, time: i.createdAt });
    }
    return out;
  }

  /** Remove a member (owner or admin; admins cannot remove the owner or other admins), or leave when `target === user`. */
  async remove(user: string, group: string, target: string, o: GroupChangeOptions = {}): Promise<void> {
    const { conv, member } = await this.#h.membership(user, group, true);
    if (!o.direct) this.#take(user);
    const leaving = target === user;
    const victim = leaving ? member : await this.#store.member(group, target);
    if (!victim) throw new HeraldError('HERALD_ERR_IM_NOT_MEMBER', `${target} is not a member`);
    if (!leaving) {
      if (member.role === 'member') throw new HeraldError('HERALD_ERR_IM_NOT_ALLOWED', 'Only owners and admins remove members');
      if (member.role === 'admin' && victim.role !== 'member') throw new HeraldError('HERALD_ERR_IM_NOT_ALLOWED', 'Admins remove members only');
    }
    // The removed user gets the event in its inbox too, so it learns it left.
    await this.#h.memberEvent(conv, user, { action: leaving ? 'left' : 'removed', user: target }, [target]);
    await this.#store.removeMember(group, target);
    if (victim.role === 'owner') {
      const rest = await this.#store.members(group);
      const heir = rest.find((m) => m.role === 'admin') ?? rest[0];
      if (heir) {
        await this.#store.setRole(group, heir.user, 'owner');
        await this.#h.memberEvent(conv, user, { action: 'role', user: heir.user, role: 'owner' }, []);
      }
    }
  }

  /** Set a member's role (owner only; giving `owner` transfers ownership, the caller becomes admin). */
  async setRole(user: string, group: string, target: string, role: MemberRole, o: GroupChangeOptions = {}): Promise<void> {
    const { conv, member } = await this.#h.membership(user, group, true);
    if (member.role !== 'owner') throw new HeraldError('HERALD_ERR_IM_NOT_ALLOWED', 'Only the owner sets roles');
    if (!o.direct) this.#take(user);
    if (target === user) throw new HeraldError('HERALD_ERR_IM_NOT_ALLOWED', 'Transfer ownership by giving another member the owner role');
    if (!(await this.#store.setRole(group, target, role))) throw new HeraldError('HERALD_ERR_IM_NOT_MEMBER', `${target} is not a member`);
    if (role === 'owner') await this.#store.setRole(group, user, 'admin');
    await this.#h.memberEvent(conv, user, { action: 'role', user: target, role }, []);
  }

  /** Members of a group the user belongs to. */
  async members(user: string, conversation: string): Promise<MemberRecord[]> {
    await this.#h.membership(user, conversation);
    return this.#store.members(conversation);
  }

  // ---- internals ---------------------------------------------------------------------------

  /** New members of a small group and the others see each other's presence at once (large groups share none). */
  async #shareIfSmall(group: string, joined: readonly string[]): Promise<void> {
    const members = await this.#store.members(group);
    if (members.length > this.#cfg.largeGroupThreshold) return;
    const all = members.map((m) => m.user);
    for (const u of joined) await this.#h.sharePresence(u, all);
  }

  #take(user: string): void {
    if (!this.#ops.take(user)) throw new HeraldError('HERALD_ERR_TOO_MANY_REQUESTS', `At most ${this.#cfg.groupOpsPerSecond} group changes per second`);
  }

  /** Throws HERALD_ERR_IM_TOO_MANY_GROUPS when the user is already in `im.maxGroupsPerUser` groups. */
  async #assertRoom(user: string): Promise<void> {
    if ((await this.#store.groupCount(user)) >= this.#cfg.maxGroupsPerUser) {
      throw new HeraldError('HERALD_ERR_IM_TOO_MANY_GROUPS', `A user is a member of at most ${this.#cfg.maxGroupsPerUser} groups`);
    }
  }

  async #hasInvite(user: string, group: string): Promise<boolean> {
    return (await this.#store.invites(user)).some((i) => i.conversation === group);
  }

  /**
   * Who joins at once and who is invited: with `direct` everyone joins; otherwise the actor's
   * mutual contacts join unless they are at their group cap (then they are invited, and the
   * cap answers their accept).
   */
  async #split(actor: string, users: readonly string[], o: GroupChangeOptions): Promise<{ join: string[]; invite: string[] }> {
    if (o.direct || users.length === 0) return { join: [...users], invite: [] };
    const mutual = await this.#h.mutualContacts(actor);
    const join: string[] = [];
    const invite: string[] = [];
    for (const u of users) {
      if (mutual.has(u) && (await this.#store.groupCount(u)) < this.#cfg.maxGroupsPerUser) join.push(u);
      else invite.push(u);
    }
    return { join, invite };
  }

  /** Store invitations (users holding `im.maxPendingInvites` already are left out) and push them. */
  async #invite(conv: ConversationRecord, inviter: string, users: readonly string[]): Promise<string[]> {
    if (users.length === 0) return [];
    const room: string[] = [];
    for (const u of users) if ((await this.#store.invites(u)).length < this.#cfg.maxPendingInvites) room.push(u);
    const invited = room.length ? await this.#store.invite(conv.id, inviter, room) : [];
    const time = Date.now();
    const body = Buffer.from(
      JSON.stringify({ type: 'invite', group: conv.id, ...(conv.title !== undefined ? { title: conv.title } : {}), from: inviter, time }),
    );
    for (const u of invited) this.#h.emit(u, body);
    return invited;
  }
}
