/**
 * RFC 6121 on Herald's IM for one XMPP session: the roster is the user's contacts, presence is
 * Herald presence, and the user's inbox channel feeds what the client receives; chat messages
 * both ways (and their receipts, markers, chat states, corrections, retractions, carbons and
 * archive) are chat-session.ts's job.
 *
 * Delivery: when the client becomes available (initial presence) the session subscribes to the
 * inbox, writes every unacknowledged entry with a delay stamp (offline delivery), then the live
 * ones; an entry is never written twice to one session. The session acknowledges entries to the
 * IM (cumulatively, by inbox seq) once the client has them, including those XMPP does not show
 * (group messages, the session's own), so the native re-delivery does not repeat them.
 */
import type { Subscriber } from '../../core/hub.js';
import type { ChosenState, PresenceState } from '../../core/im/presence.js';
import { inboxChannel } from '../../core/im/service.js';
import type { Outgoing, Publication } from '../../core/publication.js';
import { SubscriptionState } from '../../core/subscription.js';
import type { ChatContext } from './chat-context.js';
import { XmppChat } from './chat-session.js';
import { roomOf } from './muc.js';
import { StanzaError } from './errors.js';
import { bareJid, parseJid } from './jid.js';
import type { ImMessage } from './render.js';
import { el, esc, NS, type XmlElement } from './xml.js';

/** Most pages of offline entries read when the client becomes available (the rest follow by re-delivery). */
const MAX_SYNC_PAGES = 20;
/** Longest status text taken from a presence (the native protocol's limit), characters. */
const MAX_STATUS_LENGTH = 256;

/**
 * What the IM part needs from its session: what its chat side needs (chat-context.ts; `deliver`
 * acknowledges an entry at once, or on the client's XEP-0198 ack), and a way to end the stream.
 */
export interface ImSessionContext extends ChatContext {
  /** The inbox subscription failed for good: end the stream. */
  fail(err: unknown): void;
}

/** A decoded inbox event (parsed once per publication, shared by every XMPP session of the node). */
type InboxEvent =
  | { readonly type: 'message'; readonly seq?: number; readonly redelivered?: boolean; readonly message: ImMessage }
  | { readonly type: 'presence'; readonly user: string; readonly state: PresenceState; readonly status?: string }
  | { readonly type: 'receipt'; readonly kind: string; readonly conversation: string; readonly user: string; readonly seq: number }
  | { readonly type: 'typing'; readonly conversation: string; readonly user: string }
  | { readonly type: 'other' };

/** Inbox event types the XMPP front shows. */
const SHOWN = new Set(['message', 'presence', 'receipt', 'typing']);

function decodeEvent(pub: Publication): InboxEvent {
  try {
    const v = JSON.parse(pub.payload.toString('utf8')) as InboxEvent;
    return v && SHOWN.has(v.type) ? v : { type: 'other' };
  } catch {
    return { type: 'other' };
  }
}

/** The inbox subscription of one session (its own SubscriptionState, like the other fronts'). */
class InboxSubscription extends SubscriptionState implements Subscriber {
  readonly #owner: XmppIm;
  constructor(owner: XmppIm, channel: string) {
    super(channel);
    this.#owner = owner;
  }
  deliver(out: Outgoing): void {
    if (this.accept(out)) this.#owner.onEvent(out.encoded(decodeEvent), false);
  }
  channelDeleted(): void {
    this.#owner.resubscribe();
  }
}

/** Herald state of an XMPP `<show/>` (absent = online). */
export function stateOfShow(show: string | undefined): ChosenState | undefined {
  switch (show) {
    case undefined:
    case 'chat':
      return 'online';
    case 'away':
    case 'xa':
      return 'away';
    case 'dnd':
      return 'busy';
    default:
      return undefined;
  }
}

/** `<presence/>` of a Herald presence record, from the user's bare JID. */
export function presenceXml(rec: { user: string; state: PresenceState; status?: string }, domain: string, to: string): string {
  const from = bareJid(rec.user, domain);
  if (rec.state === 'offline') return el('presence', { xmlns: NS.CLIENT, from, to, type: 'unavailable' });
  const show = rec.state === 'away' ? 'away' : rec.state === 'busy' ? 'dnd' : undefined;
  return el('presence', { xmlns: NS.CLIENT, from, to }, [show && el('show', {}, [show]), rec.status ? el('status', {}, [esc(rec.status)]) : undefined]);
}

/** The IM side of one bound XMPP session. */
export class XmppIm {
  readonly #ctx: ImSessionContext;
  #inbox: InboxSubscription | undefined;
  /** Highest inbox seq written to this session. */
  #lastSeq = 0;
  /** Inbox seq after which this session delivers, while available. */
  #from: number | undefined;
  /** One-to-one chat both ways (chat-session.ts). */
  readonly chat: XmppChat;

  constructor(ctx: ImSessionContext) {
    this.#ctx = ctx;
    this.chat = new XmppChat(ctx);
  }

  /** Whether the client sent its initial presence and has not gone unavailable. */
  get available(): boolean {
    return this.#inbox !== undefined;
  }

  /** While available, the inbox seq after which this session delivers (what came before was not its business). */
  get deliveredFrom(): number | undefined {
    return this.#inbox ? this.#from : undefined;
  }

  /**
   * A session resumed from another node (resumption.ts) whose client was available: deliver the
   * inbox after `after` (what the client did not acknowledge there), then the contacts' presence
   * afresh (what the other node sent and the client did not acknowledge is gone).
   */
  async resumeAvailable(after: number): Promise<void> {
    await this.#subscribe(after);
    if (!this.#ctx.open) return;
    for (const c of await this.#ctx.im.contacts(this.#ctx.user)) if (c.state !== 'offline') this.#ctx.write(presenceXml(c, this.#ctx.domain, this.#ctx.jid));
  }

  // ---- presence ----------------------------------------------------------------------------

  /** A presence stanza from the client (its `from` already checked). */
  async presence(stanza: XmlElement): Promise<void> {
    const type = stanza.attr('type');
    const to = stanza.attr('to');
    if (type === 'subscribe' || type === 'subscribed' || type === 'unsubscribe' || type === 'unsubscribed') return this.#subscription(type, to);
    const room = to === undefined ? undefined : parseJid(to);
    const conversation = room && roomOf(room, this.#ctx.domain);
    if (room && conversation) return this.chat.rooms.presence(room, conversation, type, stanza);
    // Directed presence (to one entity) and probes are not routed between users.
    if (to !== undefined || type === 'probe' || type === 'error') return;
    if (type === 'unavailable') {
      this.#unsubscribe();
      return;
    }
    if (type !== undefined) throw new StanzaError('bad-request', `Unknown presence type: ${type.slice(0, 32)}`);
    const state = stateOfShow(stanza.childText('show', NS.CLIENT));
    if (!state) throw new StanzaError('bad-request', 'show must be chat, away, xa or dnd');
    const status = stanza.childText('status', NS.CLIENT)?.slice(0, MAX_STATUS_LENGTH) || undefined;
    const first = !this.#inbox;
    if (first) await this.#subscribe();
    const rec = await this.#ctx.im.setPresence(this.#ctx.user, state, status);
    if (!this.#ctx.open) return;
    // RFC 6121 §4.4.2: the user's own available resources get its presence too.
    this.#ctx.write(presenceXml(rec, this.#ctx.domain, this.#ctx.jid));
    if (first) {
      for (const c of await this.#ctx.im.contacts(this.#ctx.user)) if (c.state !== 'offline') this.#ctx.write(presenceXml(c, this.#ctx.domain, this.#ctx.jid));
    }
  }

  /**
   * Subscription requests and answers mapped onto contacts. Herald shares presence only between
   * mutual contacts (a subscription `both`), so each side consents by adding the other:
   * `subscribe` to B (asking to see B) and `subscribed` to B (letting B see the user) both add B
   * to the user's contacts; `unsubscribe` and `unsubscribed` remove B. The request is approved
   * (`subscribed` from B, then B's presence) once B has the user as a contact too; until then
   * the roster item stays `none` with `ask="subscribe"`. Known and unknown accounts get the same
   * answer (RFC 6121 §3.1.3).
   */
  async #subscription(type: string, to: string | undefined): Promise<void> {
    const peer = to === undefined ? undefined : parseJid(to);
    if (!peer || peer.user === '') throw new StanzaError('jid-malformed', 'A subscription needs a user JID in `to`');
    if (peer.domain !== this.#ctx.domain) throw new StanzaError('remote-server-not-found');
    const { im, user, domain, jid } = this.#ctx;
    const other = peer.user;
    if (other === user) return;
    const from = bareJid(other, domain);
    if (type === 'unsubscribe' || type === 'unsubscribed') {
      if (await im.removeContact(user, other)) this.#ctx.write(rosterPush(from, 'remove'));
      return;
    }
    await im.addContact(user, other);
    const mutual = (await im.contactBook.mutual(user)).has(other);
    this.#ctx.write(rosterPush(from, mutual ? 'both' : 'none'));
    if (type !== 'subscribe' || !mutual) return;
    this.#ctx.write(el('presence', { xmlns: NS.CLIENT, from, to: bareJid(user, domain), type: 'subscribed' }));
    const [rec] = await im.getPresence(user, [other]);
    if (rec && rec.state !== 'offline') this.#ctx.write(presenceXml(rec, domain, jid));
  }

  // ---- roster ------------------------------------------------------------------------------

  /** A roster IQ (`jabber:iq:roster`, addressed to the user's own account); returns the result's payload. */
  async roster(type: 'get' | 'set', query: XmlElement): Promise<string | undefined> {
    const { im, user, domain } = this.#ctx;
    if (type === 'get') {
      const items = (await im.contacts(user)).map((r) => r.user);
      const mutual = await im.contactBook.mutual(user);
      return el(
        'query',
        { xmlns: NS.ROSTER },
        items.map((c) => el('item', { jid: bareJid(c, domain), subscription: mutual.has(c) ? 'both' : 'none' })),
      );
    }
    const items = query.elements().filter((e) => e.local === 'item');
    if (items.length !== 1) throw new StanzaError('bad-request', 'A roster set carries exactly one item');
    const item = items[0]!;
    const peer = parseJid(item.attr('jid') ?? '');
    if (!peer || peer.user === '' || peer.resource !== '') throw new StanzaError('bad-request', 'The item needs a bare user JID');
    if (peer.domain !== domain) throw new StanzaError('item-not-found', 'Only users of this server can be contacts');
    const jid = bareJid(peer.user, domain);
    if (item.attr('subscription') === 'remove') {
      if (!(await im.removeContact(user, peer.user))) throw new StanzaError('item-not-found');
      this.#ctx.write(rosterPush(jid, 'remove'));
    } else {
      // Known and unknown accounts alike: a roster may hold someone who has not signed up yet.
      await im.addContact(user, peer.user);
      this.#ctx.write(rosterPush(jid, (await im.contactBook.mutual(user)).has(peer.user) ? 'both' : 'none'));
    }
    return undefined;
  }

  // ---- messages (chat-session.ts) ---------------------------------------------------------

  /** A message stanza from the client. */
  message(stanza: XmlElement): Promise<void> {
    return this.chat.message(stanza);
  }

  // ---- inbox -------------------------------------------------------------------------------

  /** Subscribe to the inbox and deliver what is unacknowledged (after `start`, else after the inbox's ack cursor), then what comes. */
  async #subscribe(start?: number): Promise<void> {
    const { core, im, user } = this.#ctx;
    const channel = inboxChannel(user);
    const sub = (this.#inbox = new InboxSubscription(this, channel));
    // Registered before the store is read: live entries wait in the subscription state meanwhile.
    const res = await core.subscribe(sub, channel, {});
    if (this.#inbox !== sub || !this.#ctx.open) {
      core.unsubscribe(sub, channel);
      return;
    }
    let after = start;
    for (let page = 0; page < MAX_SYNC_PAGES; page++) {
      // The subscription's start position was read before the store: sync need not read it again.
      const r = await im.sync(user, after, undefined, res.position);
      if (this.#inbox !== sub) return;
      if (page === 0) this.#from = start ?? r.acked;
      for (const e of r.entries) {
        const m = e.message;
        this.onEvent(
          {
            type: 'message',
            seq: e.seq,
            message: {
              id: m.id,
              conversation: m.conversation,
              from: m.sender,
              kind: m.kind,
              time: m.time,
              data: JSON.parse(m.payload) as unknown,
              target: m.target,
              recalled: m.recalled,
            },
          },
          true,
        );
      }
      if (!r.more || r.entries.length === 0) break;
      after = r.entries.at(-1)!.seq;
    }
    for (const out of sub.settle(res.position)) this.onEvent(out.encoded(decodeEvent), false);
  }

  #unsubscribe(): void {
    const sub = this.#inbox;
    if (!sub) return;
    this.#inbox = undefined;
    this.#ctx.core.unsubscribe(sub, sub.channel);
  }

  /** The inbox channel was deleted: subscribe again. */
  resubscribe(): void {
    if (!this.#inbox) return;
    this.#inbox = undefined;
    this.#subscribe().catch((err: unknown) => this.#ctx.fail(err));
  }

  /** @internal An inbox event, live (`stored` false) or read from the store at availability. */
  onEvent(ev: InboxEvent, stored: boolean): void {
    if (!this.#ctx.open) return;
    switch (ev.type) {
      case 'presence':
        if (ev.user !== this.#ctx.user) this.#ctx.write(presenceXml(ev, this.#ctx.domain, this.#ctx.jid));
        this.chat.rooms.presenceOf(ev.user, ev.state);
        return;
      case 'receipt':
        this.chat
          .receipt(ev.kind, ev.conversation, ev.user, ev.seq)
          .catch((err: unknown) => this.#ctx.core.logger.warn({ err: String(err) }, 'xmpp receipt failed'));
        return;
      case 'typing':
        this.chat.typing(ev.conversation, ev.user);
        return;
      case 'message': {
        const seq = ev.seq;
        if (seq !== undefined) {
          if (seq <= this.#lastSeq) return;
          this.#lastSeq = seq;
        }
        this.chat.entry(ev.message, seq, stored || ev.redelivered === true);
        return;
      }
      default:
        return;
    }
  }

  /** The session ended. */
  close(): void {
    this.#unsubscribe();
  }
}

/** A roster push (RFC 6121 §2.1.6) of one item; `none` carries `ask="subscribe"` (waiting for the peer). */
function rosterPush(jid: string, subscription: 'both' | 'none' | 'remove'): string {
  const ask = subscription === 'none' ? 'subscribe' : undefined;
  return el('iq', { xmlns: NS.CLIENT, type: 'set', id: `push-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}` }, [
    el('query', { xmlns: NS.ROSTER }, [el('item', { jid, subscription, ask })]),
  ]);
}
