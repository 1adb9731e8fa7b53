/**
 * One-to-one chat of one bound XMPP session, both ways, on Herald's direct conversations:
 *
 * - from the client (chat.ts reads what a message asks): a body is a send, XEP-0308 a Herald
 *   edit, XEP-0424 a recall, XEP-0333 `displayed` a read receipt, XEP-0085 `composing` typing;
 * - to the client (render.ts writes it): the peer's messages, edits and recalls; typing as
 *   `composing`; Herald's delivered receipt as XEP-0184 `received` for each message the client
 *   asked a receipt for; Herald's read receipt as XEP-0333 `displayed`;
 * - XEP-0280 carbons: once enabled, the user's messages (edits, recalls) sent from another
 *   session — XMPP or not — arrive as `<sent/>` copies; messages to the user reach every session
 *   anyway (Herald's inbox), so `<received/>` copies are never needed;
 * - XEP-0313 archive queries (mam.ts), and group chat rooms (muc.ts).
 *
 * Guarantees: every inbox entry is handed to `deliver` exactly once, in inbox order, with the
 * stanza it shows (or none), so the inbox is acknowledged as before; a user's own entry is never
 * echoed to the session that sent it; chat states are advisory — one the IM refuses (rate, no
 * conversation yet) is dropped, never answered with an error.
 */
import { toHeraldError } from '../../core/errors.js';
import { directConversationId } from '../../core/im/service.js';
import { chatAction } from './chat.js';
import type { ChatContext } from './chat-context.js';
import { StanzaError } from './errors.js';
import { bareJid, parseJid } from './jid.js';
import { parseMamQuery, runMamQuery } from './mam.js';
import { roomOf, XmppRooms } from './muc.js';
import { chatMessageXml, composingXml, displayedXml, type ImMessage, receivedXml, sentCarbonXml } from './render.js';
import { SentLog } from './sent-log.js';
import type { XmlElement } from './xml.js';

/** The peer of a direct conversation the user is in, or undefined for any other conversation. */
export function directPeer(conversation: string, user: string): string | undefined {
  const parts = conversation.split(':');
  if (parts.length !== 3 || parts[0] !== 'd') return undefined;
  const [, a, b] = parts as [string, string, string];
  if (a === user) return b;
  return b === user ? a : undefined;
}

/** The chat side of one bound session. */
export class XmppChat {
  readonly #ctx: ChatContext;
  readonly #sent = new SentLog();
  /** XEP-0280 enabled on this session. */
  #carbons = false;
  /** Sends of this session waiting for their ack: the user's own entries wait too (are they this session's?). */
  #inflight = 0;
  #heldOwn: Array<{ readonly m: ImMessage; readonly delayed: boolean }> = [];
  /** Group chat rooms (XEP-0045 subset, muc.ts). */
  readonly rooms: XmppRooms;

  constructor(ctx: ChatContext) {
    this.#ctx = ctx;
    this.rooms = new XmppRooms(ctx, this.#sent);
  }

  /** XEP-0280 `<enable/>` / `<disable/>`. */
  carbons(enabled: boolean): void {
    this.#carbons = enabled;
  }

  /** Whether XEP-0280 carbons are on. */
  get carbonsOn(): boolean {
    return this.#carbons;
  }

  /** XEP-0313: an archive query (IQ set); writes the results, returns the `<fin/>`. */
  archive(q: XmlElement): Promise<string> {
    const { im, domain, user, jid } = this.#ctx;
    return runMamQuery(parseMamQuery(q, domain), { im, domain, user, jid, write: (xml) => this.#ctx.write(xml) });
  }

  // ---- from the client ---------------------------------------------------------------------

  /** A message stanza from the client (its `from` already checked). */
  async message(stanza: XmlElement): Promise<void> {
    const type = stanza.attr('type') ?? 'normal';
    if (type === 'error' || type === 'headline') return;
    if (type !== 'chat' && type !== 'normal' && type !== 'groupchat') throw new StanzaError('bad-request', `Unknown message type: ${type.slice(0, 32)}`);
    const to = stanza.attr('to');
    if (to === undefined) return;
    const peer = parseJid(to);
    if (!peer) throw new StanzaError('jid-malformed');
    const room = roomOf(peer, this.#ctx.domain);
    if (type === 'groupchat') {
      if (room === undefined) throw new StanzaError('service-unavailable', 'groupchat goes to a room of conference.<domain>');
      const action = chatAction(stanza);
      if (action.type !== 'send') return;
      return this.#sending(this.rooms.message(peer, room, action.body, action.clientId, action.stanzaId));
    }
    if (peer.domain !== this.#ctx.domain) throw new StanzaError('remote-server-not-found');
    if (peer.user === '') throw new StanzaError('service-unavailable');
    const action = chatAction(stanza);
    const { core, im, user } = this.#ctx;
    const conversation = directConversationId(user, peer.user);
    switch (action.type) {
      case 'send': {
        const p = { to: peer.user, clientId: action.clientId };
        const data = await core.backend.proxyImSend(user, this.#ctx.jid, p, { text: action.body });
        const ack = await this.#sending(im.send(user, { ...p, data }));
        this.#sent.add({
          id: ack.id,
          stanzaId: action.stanzaId,
          conversation: ack.conversation,
          seq: ack.seq,
          receipt: action.receipt && action.stanzaId !== undefined,
        });
        return;
      }
      case 'edit': {
        const target = await this.#own(action.target, conversation);
        const ack = await this.#sending(im.edit(user, target, { text: action.body }, action.clientId));
        this.#sent.add({ id: ack.id, stanzaId: action.stanzaId, conversation: ack.conversation, seq: ack.seq, receipt: false });
        return;
      }
      case 'recall': {
        const target = await this.#own(action.target, conversation);
        const ack = await this.#sending(im.recall(user, target, action.clientId));
        this.#sent.add({ id: ack.id, stanzaId: undefined, conversation: ack.conversation, seq: ack.seq, receipt: false });
        return;
      }
      case 'displayed': {
        const m = await im.message(user, this.#sent.serverId(action.target));
        if (m.conversation !== conversation) throw new StanzaError('item-not-found', 'The message is not in this conversation');
        await im.read(user, conversation, m.seq);
        return;
      }
      case 'typing':
        await im.typing(user, conversation).catch((err: unknown) => {
          const code = toHeraldError(err).code;
          if (code !== 'HERALD_ERR_TOO_MANY_REQUESTS' && code !== 'HERALD_ERR_IM_UNKNOWN_CONVERSATION') throw err;
        });
        return;
      case 'none':
        return;
    }
  }

  /** The server id of the user's own message `ref` (a stanza id of this session's, or a server id) in `conversation`. */
  async #own(ref: string, conversation: string): Promise<string> {
    const m = await this.#ctx.im.message(this.#ctx.user, this.#sent.serverId(ref));
    if (m.conversation !== conversation) throw new StanzaError('item-not-found', 'The message is not in this conversation');
    return m.id;
  }

  /** Count a send in flight until it settles; the user's own entries that arrived meanwhile are then sorted out. */
  async #sending<T>(p: Promise<T>): Promise<T> {
    this.#inflight++;
    try {
      return await p;
    } finally {
      if (--this.#inflight === 0) setImmediate(() => this.#releaseOwn());
    }
  }

  #releaseOwn(): void {
    if (this.#inflight > 0) return;
    const held = this.#heldOwn;
    this.#heldOwn = [];
    for (const { m, delayed } of held) {
      const xml = this.#sent.has(m.id) && directPeer(m.conversation, this.#ctx.user) !== undefined ? undefined : this.#show(m, delayed);
      if (xml !== undefined) this.#ctx.write(xml);
    }
  }

  // ---- to the client -----------------------------------------------------------------------

  /** An inbox message entry (`seq` undefined: a large group's live push), live or read from the store (`delayed`). */
  entry(m: ImMessage, seq: number | undefined, delayed: boolean): void {
    let xml: string | undefined;
    // The user's own entry while a send of this session waits for its ack: is it this session's
    // (no carbon; a room reflects it with the client's id)? Decided once the sends settle.
    if (m.from === this.#ctx.user && this.#inflight > 0 && !this.#sent.has(m.id)) this.#heldOwn.push({ m, delayed });
    else xml = this.#show(m, delayed);
    if (seq !== undefined) this.#ctx.deliver(xml, seq);
    else if (xml !== undefined) this.#ctx.write(xml);
  }

  /** The stanza of an entry: the peer's message, a carbon of the user's own, a room's message; or none. */
  #show(m: ImMessage, delayed: boolean): string | undefined {
    const { user, domain, jid } = this.#ctx;
    const peer = directPeer(m.conversation, user);
    if (peer === undefined) return this.rooms.entry(m, delayed);
    // The user's own entry: a carbon for the other sessions, nothing for the one that sent it.
    if (m.from === user) return this.#carbon(m);
    if (m.from === peer) return chatMessageXml(m, { from: bareJid(peer, domain), to: jid, by: bareJid(user, domain) }, domain, delayed);
    return undefined;
  }

  /** The `<sent/>` carbon of the user's own entry, when carbons are on. */
  #carbon(m: ImMessage): string | undefined {
    if (!this.#carbons || this.#sent.has(m.id)) return undefined;
    const { user, domain, jid } = this.#ctx;
    const peer = directPeer(m.conversation, user)!;
    const own = bareJid(user, domain);
    const inner = chatMessageXml(m, { from: own, to: bareJid(peer, domain), by: own }, domain, false);
    return inner === undefined ? undefined : sentCarbonXml(inner, user, domain, jid);
  }

  /** A receipt: delivered → XEP-0184 for what the client asked; read by the peer → XEP-0333 `displayed`. */
  async receipt(kind: string, conversation: string, reader: string, seq: number): Promise<void> {
    const { im, user, domain, jid } = this.#ctx;
    if (reader === user || directPeer(conversation, user) !== reader) return;
    const from = bareJid(reader, domain);
    if (kind === 'delivered') {
      for (const m of this.#sent.receiptsDue(conversation, seq)) if (m.stanzaId !== undefined) this.#ctx.write(receivedXml(from, jid, m.stanzaId));
      return;
    }
    if (kind !== 'read') return;
    const [m] = await im.history(user, conversation, { after: seq - 1, limit: 1 });
    if (!m || m.seq !== seq || !this.#ctx.open) return;
    this.#ctx.write(displayedXml(from, jid, this.#sent.clientId(m.id)));
  }

  /** Herald typing in a direct conversation: XEP-0085 `composing`. */
  typing(conversation: string, who: string): void {
    const { user, domain, jid } = this.#ctx;
    if (who !== user && directPeer(conversation, user) === who) this.#ctx.write(composingXml(bareJid(who, domain), jid));
  }
}
