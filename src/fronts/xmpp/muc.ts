/**
 * A subset of multi-user chat (XEP-0045) over Herald groups: every group `g:<hex>` is a
 * persistent, members-only, non-anonymous room `<hex>@conference.<domain>` whose members are the
 * group's. A member joins with presence to `room/<nick>` and then gets the room's messages as
 * `groupchat` from `room/<sender id>`; its `groupchat` messages are Herald group sends.
 *
 * - Nicknames are the user ids (the asked one is replaced, status 210), so an occupant JID
 *   always names its user; the occupant list at join is the members whose Herald presence is
 *   not offline (affiliation from the group role), and it follows their presence afterwards.
 * - Joining is a session's own business (other occupants are not told; presence is Herald
 *   presence); the room's subject is empty; the room's last messages (XEP-0045 §7.2.15: 20 by
 *   default, `<history maxstanzas/>` up to 50, `maxchars="0"` for none) come at join with delay
 *   stamps, between the self-presence and the subject, from the member's join on.
 * - A non-member's join is `registration-required`, an unknown room `item-not-found`, a message
 *   from a session that did not join `not-acceptable`; private messages through the room are
 *   `feature-not-implemented`. Room configuration, moderation, invitations and nick changes are
 *   not offered.
 */
import type { PresenceState } from '../../core/im/presence.js';
import type { MemberRecord } from '../../core/im/store.js';
import { StanzaError } from './errors.js';
import { bareJid, type Jid } from './jid.js';
import type { ChatContext } from './chat-context.js';
import type { SentLog } from './sent-log.js';
import { chatMessageXml, imMessageOf, type ImMessage } from './render.js';
import { el, NS, type XmlElement } from './xml.js';

/** XEP-0045 namespaces. */
export const NS_MUC = 'http://jabber.org/protocol/muc';
export const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';

/** Room history sent at join when the client does not say (XEP-0045 §7.2.15), and the most sent. */
export const DEFAULT_JOIN_HISTORY = 20;
export const MAX_JOIN_HISTORY = 50;

/** Local parts of room JIDs: the hex of a Herald group id. */
const ROOM_RE = /^[0-9a-f]{1,64}$/;

/** The MUC service's domain. */
export function mucDomain(domain: string): string {
  return `conference.${domain}`;
}

/** The room JID of a group conversation, or undefined for any other conversation. */
export function roomJid(conversation: string, domain: string): string | undefined {
  return conversation.startsWith('g:') ? `${conversation.slice(2)}@${mucDomain(domain)}` : undefined;
}

/** The group conversation of a room JID (any resource), or undefined when `jid` is not a room. */
export function roomOf(jid: Jid, domain: string): string | undefined {
  return jid.domain === mucDomain(domain) && ROOM_RE.test(jid.user) ? `g:${jid.user}` : undefined;
}

/**
 * How many of the room's last messages a join asks for: `<history maxstanzas="N"/>` (capped at
 * MAX_JOIN_HISTORY), none for `maxchars="0"` (or `maxstanzas="0"`), else DEFAULT_JOIN_HISTORY.
 * `seconds` and `since` are not applied.
 */
export function joinHistory(join: XmlElement | undefined): number {
  const h = join?.child('x', NS_MUC)?.child('history', NS_MUC);
  const max = h?.attr('maxstanzas');
  if (max !== undefined && /^\d{1,9}$/.test(max)) return Math.min(Number(max), MAX_JOIN_HISTORY);
  if (h?.attr('maxchars') === '0') return 0;
  return DEFAULT_JOIN_HISTORY;
}

/** The occupant `<presence/>` of a member. */
function occupantXml(room: string, user: string, domain: string, to: string, role: string, state: PresenceState, codes: readonly number[] = []): string {
  const from = `${room}/${user}`;
  const item = el('item', {
    affiliation: role === 'owner' ? 'owner' : role === 'admin' ? 'admin' : 'member',
    role: role === 'member' ? 'participant' : 'moderator',
    jid: bareJid(user, domain),
  });
  const x = el('x', { xmlns: NS_MUC_USER }, [item, ...codes.map((c) => el('status', { code: c }))]);
  if (state === 'offline') return el('presence', { xmlns: NS.CLIENT, from, to, type: 'unavailable' }, [x]);
  const show = state === 'away' ? 'away' : state === 'busy' ? 'dnd' : undefined;
  return el('presence', { xmlns: NS.CLIENT, from, to }, [show && el('show', {}, [show]), x]);
}

/** The rooms one bound session joined. */
export class XmppRooms {
  readonly #ctx: ChatContext;
  readonly #sent: SentLog;
  /** Joined rooms: conversation → the members' roles at join. */
  readonly #joined = new Map<string, Map<string, string>>();

  constructor(ctx: ChatContext, sent: SentLog) {
    this.#ctx = ctx;
    this.#sent = sent;
  }

  /** Conversations of the joined rooms. */
  joinedRooms(): string[] {
    return [...this.#joined.keys()];
  }

  /**
   * Rooms joined before a resumption on another node: joined again without a word to the client
   * (its occupancy never ended); rooms the user is no longer a member of are dropped.
   */
  async restore(conversations: readonly string[]): Promise<void> {
    for (const conversation of conversations) {
      const members = await this.#ctx.im.members(this.#ctx.user, conversation).catch(() => undefined);
      if (members) this.#joined.set(conversation, new Map(members.map((m) => [m.user, m.role as string])));
    }
  }

  /** Presence to a room JID: join (available, `stanza` saying how much history it wants) or leave (`unavailable`). */
  async presence(to: Jid, conversation: string, type: string | undefined, stanza?: XmlElement): Promise<void> {
    const { im, user, domain, jid } = this.#ctx;
    const room = `${to.user}@${to.domain}`;
    if (type === 'unavailable') {
      const members = this.#joined.get(conversation);
      if (!members) return;
      this.#joined.delete(conversation);
      this.#ctx.write(occupantXml(room, user, domain, jid, members.get(user) ?? 'member', 'offline', [110]));
      return;
    }
    if (type !== undefined) return;
    if (to.resource === '') throw new StanzaError('jid-malformed', 'Join with a nickname: room@service/nick');
    let members: MemberRecord[];
    try {
      members = await im.members(user, conversation);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'HERALD_ERR_IM_NOT_MEMBER') throw new StanzaError('registration-required', 'This room is for its members');
      throw err;
    }
    const roles = new Map(members.map((m) => [m.user, m.role as string]));
    this.#joined.set(conversation, roles);
    const others = members.map((m) => m.user).filter((u) => u !== user);
    for (const rec of await im.getPresence(user, others)) {
      if (rec.state !== 'offline') this.#ctx.write(occupantXml(room, rec.user, domain, jid, roles.get(rec.user) ?? 'member', rec.state));
    }
    const codes = to.resource === user ? [100, 110] : [100, 110, 210];
    this.#ctx.write(occupantXml(room, user, domain, jid, roles.get(user) ?? 'member', 'online', codes));
    const wanted = joinHistory(stanza);
    if (wanted > 0) {
      // Newest first from the store; the member sees nothing from before it joined.
      const page = (await im.history(user, conversation, { limit: wanted })).filter((m) => m.kind === 'message');
      for (const s of page.sort((x, y) => x.seq - y.seq)) {
        const xml = this.entry(imMessageOf(s), true);
        if (xml !== undefined) this.#ctx.write(xml);
      }
    }
    this.#ctx.write(el('message', { xmlns: NS.CLIENT, type: 'groupchat', from: room, to: jid, id: `subject-${conversation.slice(2, 10)}` }, [el('subject')]));
  }

  /** A `groupchat` message to a room: a Herald group send (the session must have joined). */
  async message(to: Jid, conversation: string, body: string, clientId: string | undefined, stanzaId: string | undefined): Promise<void> {
    if (to.resource !== '') throw new StanzaError('feature-not-implemented', 'Private messages through the room are not offered');
    if (!this.#joined.has(conversation)) throw new StanzaError('not-acceptable', 'Join the room first');
    const { core, im, user, jid } = this.#ctx;
    const p = { conversation, clientId };
    const data = await core.backend.proxyImSend(user, jid, p, { text: body });
    const ack = await im.send(user, { ...p, data });
    this.#sent.add({ id: ack.id, stanzaId, conversation, seq: ack.seq, receipt: false });
  }

  /** The `groupchat` stanza of a group entry, when this session joined its room. */
  entry(m: ImMessage, delayed: boolean): string | undefined {
    if (m.kind !== 'message' || !this.#joined.has(m.conversation)) return undefined;
    const { domain, jid } = this.#ctx;
    const room = roomJid(m.conversation, domain)!;
    // The sender's own message is reflected with the id it gave (XEP-0045 §7.2.3).
    const id = m.from === this.#ctx.user ? this.#sent.clientId(m.id) : m.id;
    return chatMessageXml(m, { from: `${room}/${m.from}`, to: jid, by: room, id }, domain, delayed, 'groupchat');
  }

  /** A member's Herald presence changed: its occupant presence in the joined rooms it is in. */
  presenceOf(user: string, state: PresenceState): void {
    const { domain, jid } = this.#ctx;
    for (const [conversation, roles] of this.#joined) {
      const role = roles.get(user);
      if (role !== undefined && user !== this.#ctx.user) this.#ctx.write(occupantXml(roomJid(conversation, domain)!, user, domain, jid, role, state));
    }
  }

  /** XEP-0030 of the service (`room` undefined) or of a room: info, or the user's rooms as items. */
  async disco(kind: 'info' | 'items', conversation: string | undefined): Promise<string> {
    const { im, user, domain } = this.#ctx;
    if (kind === 'items') {
      if (conversation !== undefined) return el('query', { xmlns: NS.DISCO_ITEMS });
      const rooms = (await im.conversations(user)).filter((c) => c.kind === 'group');
      return el(
        'query',
        { xmlns: NS.DISCO_ITEMS },
        rooms.map((c) => el('item', { jid: roomJid(c.id, domain), name: c.title })),
      );
    }
    if (conversation === undefined) {
      return el('query', { xmlns: NS.DISCO_INFO }, [
        el('identity', { category: 'conference', type: 'text', name: 'Herald groups' }),
        el('feature', { var: NS_MUC }),
        el('feature', { var: NS.DISCO_INFO }),
        el('feature', { var: NS.DISCO_ITEMS }),
      ]);
    }
    await im.members(user, conversation).catch((err: unknown) => {
      throw (err as { code?: string }).code === 'HERALD_ERR_IM_NOT_MEMBER' ? new StanzaError('item-not-found') : err;
    });
    return el('query', { xmlns: NS.DISCO_INFO }, [
      el('identity', { category: 'conference', type: 'text' }),
      ...[NS_MUC, 'muc_membersonly', 'muc_persistent', 'muc_nonanonymous', 'muc_unmoderated', NS.SID].map((f) => el('feature', { var: f })),
    ]);
  }
}
