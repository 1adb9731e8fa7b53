/**
 * What a `chat` (or `normal`) message from a client asks of Herald's IM, read from its payloads
 * without side effects (so any stanza can be fuzzed through it):
 *
 * | payload | action |
 * |---|---|
 * | `<retract id/>` (XEP-0424, `urn:xmpp:message-retract:1`, or `:0` inside `<apply-to/>` of XEP-0422) | recall |
 * | `<replace id/>` (XEP-0308) with a `<body/>` | edit (`data.text` = the new body) |
 * | `<body/>` | send (`data.text`), with `<request/>` (XEP-0184) asking for a delivery receipt |
 * | `<displayed id/>` (XEP-0333) | read up to that message |
 * | `<composing/>` (XEP-0085) | typing |
 * | other chat states, `<received/>` of XEP-0184 or XEP-0333, `<acknowledged/>` | nothing: Herald sends delivery receipts itself when the client has the message |
 *
 * A retraction wins over its fallback body, a correction over a plain send. Ids are bounded to
 * `MAX_ID_LENGTH` characters; a longer or empty one is a `bad-request`.
 */
import { StanzaError } from './errors.js';
import { NS, type XmlElement } from './xml.js';

/** Longest message id taken from a client (stanza ids, origin-ids, referenced ids), characters. */
export const MAX_ID_LENGTH = 128;

/** What a chat message asks for. */
export type ChatAction =
  | { readonly type: 'send'; readonly body: string; readonly clientId?: string; readonly stanzaId?: string; readonly receipt: boolean }
  | { readonly type: 'edit'; readonly target: string; readonly body: string; readonly clientId?: string; readonly stanzaId?: string }
  | { readonly type: 'recall'; readonly target: string; readonly clientId?: string }
  | { readonly type: 'displayed'; readonly target: string }
  | { readonly type: 'typing' }
  | { readonly type: 'none' };

/** The action of a message stanza (type `chat` or `normal`, already checked); throws StanzaError for a malformed reference. */
export function chatAction(stanza: XmlElement): ChatAction {
  const originId = stanza.child('origin-id', NS.SID)?.attr('id');
  const clientId = originId && originId.length <= MAX_ID_LENGTH ? originId : undefined;
  const idAttr = stanza.attr('id');
  const stanzaId = idAttr && idAttr.length <= MAX_ID_LENGTH ? idAttr : undefined;
  const retract = stanza.child('retract', NS.RETRACT) ?? stanza.child('apply-to', NS.FASTEN);
  if (retract && (retract.ns === NS.RETRACT || retract.child('retract', NS.RETRACT_0))) return { type: 'recall', target: refId(retract), clientId };
  const body = stanza.childText('body', NS.CLIENT);
  const replace = stanza.child('replace', NS.CORRECT);
  if (replace && body !== undefined) return { type: 'edit', target: refId(replace), body, clientId, stanzaId };
  if (body !== undefined) return { type: 'send', body, clientId, stanzaId, receipt: stanza.child('request', NS.RECEIPTS) !== undefined };
  const displayed = stanza.child('displayed', NS.MARKERS);
  if (displayed) return { type: 'displayed', target: refId(displayed) };
  if (stanza.child('composing', NS.CHAT_STATES)) return { type: 'typing' };
  return { type: 'none' };
}

/** The `id` a payload refers to. */
function refId(e: XmlElement): string {
  const id = e.attr('id');
  if (!id || id.length > MAX_ID_LENGTH) throw new StanzaError('bad-request', `<${e.local.slice(0, 32)}/> needs an id of at most ${MAX_ID_LENGTH} characters`);
  return id;
}
