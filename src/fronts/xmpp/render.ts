/**
 * The stanzas a client receives for Herald IM entries and events (pure functions of their
 * input): a message, its correction (XEP-0308) and its retraction (XEP-0424); typing as a chat
 * state (XEP-0085); delivery receipts (XEP-0184) and read markers (XEP-0333); carbon copies of
 * the user's own messages (XEP-0280) and archive results (XEP-0313), both wrapping the message
 * in `<forwarded/>` (XEP-0297).
 */
import type { StoredMessage } from '../../core/im/store.js';
import { bareJid } from './jid.js';
import { el, esc, NS } from './xml.js';

/** XEP-0335: the namespace of a JSON payload beside the body. */
const NS_JSON = 'urn:xmpp:json:0';
/** The body XEP-0424 gives clients that do not know retractions. */
const RETRACT_FALLBACK = 'This person attempted to retract a previous message, but it is unsupported by your client.';

/** A message of the IM, as pushed on the inbox or read from the store. */
export interface ImMessage {
  readonly id: string;
  readonly conversation: string;
  readonly from: string;
  readonly kind: string;
  readonly time: number;
  readonly data: unknown;
  /** The message an edit or recall acts on. */
  readonly target?: string;
  /** Recalled (from the store: the message itself is kept as a tombstone). */
  readonly recalled?: boolean;
}

/** A stored message (archive or room history) as the renderer takes it; a recalled one carries no data. */
export function imMessageOf(s: StoredMessage): ImMessage {
  return {
    id: s.id,
    conversation: s.conversation,
    from: s.sender,
    kind: s.kind,
    time: s.time,
    data: s.recalled ? null : (JSON.parse(s.payload) as unknown),
    recalled: s.recalled,
  };
}

/** Addresses of a rendered `<message/>`. */
export interface Addresses {
  readonly from: string;
  readonly to: string;
  /** The bare JID whose archive assigned the stanza id (XEP-0359 `by`). */
  readonly by: string;
  /** The stanza's `id` when it is not the message id (a reflected groupchat message keeps its sender's). */
  readonly id?: string;
}

/**
 * The `<message type="chat"/>` (or `groupchat`) of a conversation entry: `message` with its body (and the
 * whole payload as XEP-0335 JSON when it holds more than `text`) and `<markable/>`; `edit` as a
 * correction of its target; `recall` as a retraction of its target with the fallback body; a
 * recalled message from the store as a tombstone. `delay`: the time stamp (XEP-0203) of an entry
 * read from the store. Undefined for kinds XMPP does not show.
 */
export function chatMessageXml(m: ImMessage, a: Addresses, domain: string, delay: boolean, type: 'chat' | 'groupchat' = 'chat'): string | undefined {
  let payload: Array<string | undefined | false>;
  if (m.kind === 'message' && m.recalled) payload = [el('retracted', { xmlns: NS.RETRACT, stamp: new Date(m.time).toISOString() })];
  else if (m.kind === 'message') payload = [...dataXml(m.data), el('markable', { xmlns: NS.MARKERS })];
  else if (m.kind === 'edit' && m.target !== undefined) payload = [...dataXml(m.data), el('replace', { xmlns: NS.CORRECT, id: m.target })];
  else if (m.kind === 'recall' && m.target !== undefined)
    payload = [
      el('retract', { xmlns: NS.RETRACT, id: m.target }),
      el('fallback', { xmlns: NS.FALLBACK, for: NS.RETRACT }),
      el('body', {}, [esc(RETRACT_FALLBACK)]),
      el('store', { xmlns: NS.HINTS }),
    ];
  else return undefined;
  return el('message', { xmlns: NS.CLIENT, type, id: a.id ?? m.id, from: a.from, to: a.to }, [
    ...payload,
    el('stanza-id', { xmlns: NS.SID, id: m.id, by: a.by }),
    delay && el('delay', { xmlns: NS.DELAY, from: domain, stamp: new Date(m.time).toISOString() }),
  ]);
}

/** `<body/>` of `data.text` (or a string payload), and the payload as JSON when it holds more. */
function dataXml(data: unknown): Array<string | false> {
  const text = typeof data === 'string' ? data : isObject(data) && typeof data.text === 'string' ? data.text : undefined;
  const extra = isObject(data) && Object.keys(data).some((k) => k !== 'text');
  return [text !== undefined && el('body', {}, [esc(text)]), (extra || text === undefined) && el('json', { xmlns: NS_JSON }, [esc(JSON.stringify(data))])];
}

/** XEP-0280: a copy, for one of the user's resources, of a message the user sent from elsewhere. */
export function sentCarbonXml(inner: string, user: string, domain: string, to: string): string {
  return el('message', { xmlns: NS.CLIENT, type: 'chat', from: bareJid(user, domain), to }, [
    el('sent', { xmlns: NS.CARBONS }, [el('forwarded', { xmlns: NS.FORWARD }, [inner])]),
  ]);
}

/** XEP-0313: one archived message as a query result. */
export function archiveResultXml(inner: string, m: ImMessage, queryId: string | undefined, owner: string, to: string): string {
  return el('message', { xmlns: NS.CLIENT, from: owner, to }, [
    el('result', { xmlns: NS.MAM, queryid: queryId, id: m.id }, [
      el('forwarded', { xmlns: NS.FORWARD }, [el('delay', { xmlns: NS.DELAY, stamp: new Date(m.time).toISOString() }), inner]),
    ]),
  ]);
}

/** XEP-0085: the peer is composing (Herald typing; never stored). */
export function composingXml(from: string, to: string): string {
  return el('message', { xmlns: NS.CLIENT, type: 'chat', from, to }, [el('composing', { xmlns: NS.CHAT_STATES }), el('no-store', { xmlns: NS.HINTS })]);
}

/** XEP-0184: the peer received the message the client sent with this id. */
export function receivedXml(from: string, to: string, id: string): string {
  return el('message', { xmlns: NS.CLIENT, from, to }, [el('received', { xmlns: NS.RECEIPTS, id })]);
}

/** XEP-0333: the peer displayed the messages up to this id. */
export function displayedXml(from: string, to: string, id: string): string {
  return el('message', { xmlns: NS.CLIENT, type: 'chat', from, to }, [el('displayed', { xmlns: NS.MARKERS, id }), el('store', { xmlns: NS.HINTS })]);
}

/** A plain object. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
