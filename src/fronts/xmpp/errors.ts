/**
 * Stream and stanza errors (RFC 6120 §4.9 and §8.3) and how Herald's error codes map onto
 * stanza error conditions.
 */
import type { HeraldError } from '../../core/errors.js';
import { el, esc, NS, type XmlElement } from './xml.js';

/** Stream error conditions used by the front (RFC 6120 §4.9.3). */
export type StreamCondition =
  | 'bad-format'
  | 'connection-timeout'
  | 'host-unknown'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'system-shutdown'
  | 'undefined-condition'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

/** A problem that ends the stream. */
export class StreamError extends Error {
  override name = 'StreamError';
  readonly condition: StreamCondition;
  constructor(condition: StreamCondition, message?: string) {
    super(message ?? condition);
    this.condition = condition;
  }
}

/** Stanza error conditions used by the front (RFC 6120 §8.3.3), with their error type. */
const STANZA_TYPES = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  'internal-server-error': 'wait',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
} as const;
/** A stanza error condition. */
export type StanzaCondition = keyof typeof STANZA_TYPES;

/** A problem with one stanza: the sender gets an error stanza, the stream goes on. */
export class StanzaError extends Error {
  override name = 'StanzaError';
  readonly condition: StanzaCondition;
  constructor(condition: StanzaCondition, message?: string) {
    super(message ?? condition);
    this.condition = condition;
  }
}

/** The `<stream:error>` element (the caller adds the stream namespace declaration when framed). */
export function streamErrorXml(condition: StreamCondition, text: string | undefined, framed: boolean): string {
  return el('stream:error', framed ? { 'xmlns:stream': NS.STREAM } : {}, [
    el(condition, { xmlns: NS.STREAMS }),
    text === undefined ? undefined : el('text', { xmlns: NS.STREAMS, 'xml:lang': 'en' }, [esc(text.slice(0, 200))]),
  ]);
}

/**
 * The error reply to a stanza: same name and id, addresses swapped (`from` is the entity that
 * was addressed, the server's domain when none), `type="error"`.
 */
export function stanzaErrorXml(
  stanza: XmlElement,
  condition: StanzaCondition,
  text: string | undefined,
  self: { jid: string | undefined; domain: string },
): string {
  return el(stanza.local, { xmlns: NS.CLIENT, type: 'error', id: stanza.attr('id'), from: stanza.attr('to') ?? self.domain, to: self.jid }, [
    el('error', { type: STANZA_TYPES[condition] }, [
      el(condition, { xmlns: NS.STANZAS }),
      text === undefined ? undefined : el('text', { xmlns: NS.STANZAS, 'xml:lang': 'en' }, [esc(text.slice(0, 200))]),
    ]),
  ]);
}

/** The stanza error condition of a Herald error. */
export function stanzaConditionOf(err: HeraldError): StanzaCondition {
  switch (err.code) {
    case 'HERALD_ERR_UNAUTHORIZED':
    case 'HERALD_ERR_TOKEN_EXPIRED':
    case 'HERALD_ERR_TOKEN_REVOKED':
      return 'not-authorized';
    case 'HERALD_ERR_FORBIDDEN':
    case 'HERALD_ERR_BACKEND_DENIED':
    case 'HERALD_ERR_IM_NOT_MEMBER':
    case 'HERALD_ERR_IM_NOT_ALLOWED':
      return 'forbidden';
    case 'HERALD_ERR_IM_RECALL_EXPIRED':
      return 'not-allowed';
    case 'HERALD_ERR_IM_UNKNOWN_USER':
      // RFC 6120 §8.5.1: a server does not tell whether an account exists.
      return 'service-unavailable';
    case 'HERALD_ERR_NOT_FOUND':
    case 'HERALD_ERR_IM_UNKNOWN_CONVERSATION':
    case 'HERALD_ERR_IM_UNKNOWN_MESSAGE':
      return 'item-not-found';
    case 'HERALD_ERR_PAYLOAD_TOO_LARGE':
    case 'HERALD_ERR_LIMIT_EXCEEDED':
      return 'policy-violation';
    case 'HERALD_ERR_TOO_MANY_REQUESTS':
      return 'resource-constraint';
    case 'HERALD_ERR_CONFLICT':
      return 'conflict';
    case 'HERALD_ERR_BAD_REQUEST':
    case 'HERALD_ERR_MALFORMED_JSON':
      return 'bad-request';
    default:
      return err.temporary ? 'internal-server-error' : 'bad-request';
  }
}
