/**
 * The IQs a bound session answers (RFC 6120 §8.2.3: every `get` and `set` gets a result or an
 * error): roster, ping (XEP-0199), session (RFC 3921), service discovery (XEP-0030), carbons
 * (XEP-0280) and the message archive (XEP-0313); anything else, and anything addressed to
 * another user (IQs are not routed between users), is `service-unavailable`, a roster or archive
 * query to another user `forbidden`.
 */
import { StanzaError } from './errors.js';
import type { XmppIm } from './im.js';
import { parseJid } from './jid.js';
import { mamFormXml } from './mam.js';
import { mucDomain, roomOf } from './muc.js';
import { el, NS, type XmlElement } from './xml.js';

/** Who the session is. */
export interface IqContext {
  readonly domain: string;
  readonly user: string;
  readonly resource: string;
  readonly im: XmppIm;
}

/**
 * Answer an IQ `get` or `set` (the caller skips `result` and `error`): resolves with the result's
 * payload (undefined for an empty result); throws StanzaError for an error answer.
 */
export async function answerIq(iq: XmlElement, type: 'get' | 'set', ctx: IqContext): Promise<string | undefined> {
  if (iq.attr('id') === undefined) throw new StanzaError('bad-request', 'An IQ needs an id');
  const payloads = iq.elements();
  if (payloads.length !== 1) throw new StanzaError('bad-request', 'An IQ get or set carries exactly one element');
  const q = payloads[0]!;
  const to = iq.attr('to');
  const muc = to === undefined ? undefined : mucTarget(to, ctx.domain);
  if (muc) {
    if (q.ns === NS.DISCO_INFO || q.ns === NS.DISCO_ITEMS) {
      if (type !== 'get') throw new StanzaError('bad-request');
      return ctx.im.chat.rooms.disco(q.ns === NS.DISCO_INFO ? 'info' : 'items', muc.room);
    }
    throw new StanzaError('service-unavailable');
  }
  const target = addressee(to, ctx);
  if (target === 'user') {
    if (q.ns === NS.ROSTER) throw new StanzaError('forbidden', "A roster is only its owner's");
    if (q.ns === NS.MAM) throw new StanzaError('forbidden', "An archive is only its owner's");
    throw new StanzaError('service-unavailable');
  }
  switch (q.ns) {
    case NS.ROSTER:
      if (target !== 'self') throw new StanzaError('service-unavailable');
      return ctx.im.roster(type, q);
    case NS.PING:
    case NS.SESSION:
      return undefined;
    case NS.BIND:
      throw new StanzaError('not-allowed', 'A resource is already bound');
    case NS.DISCO_INFO:
      if (type !== 'get') throw new StanzaError('bad-request');
      if (q.attr('node') !== undefined) throw new StanzaError('item-not-found');
      return discoInfo(target === 'server');
    case NS.CARBONS:
      if (type !== 'set' || (q.local !== 'enable' && q.local !== 'disable'))
        throw new StanzaError('bad-request', 'Carbons are enabled or disabled by an IQ set');
      ctx.im.chat.carbons(q.local === 'enable');
      return undefined;
    case NS.MAM:
      if (target === 'server') throw new StanzaError('service-unavailable', 'Query your own archive (no `to`, or your bare JID)');
      if (q.local !== 'query') throw new StanzaError('bad-request');
      return type === 'get' ? mamFormXml() : ctx.im.chat.archive(q);
    case NS.DISCO_ITEMS:
      if (type !== 'get') throw new StanzaError('bad-request');
      return el('query', { xmlns: NS.DISCO_ITEMS }, target === 'server' ? [el('item', { jid: mucDomain(ctx.domain), name: 'Groups' })] : []);
    default:
      throw new StanzaError('service-unavailable');
  }
}

/** An IQ to the MUC service (`room` undefined) or one of its rooms; undefined for any other address. */
function mucTarget(to: string, domain: string): { room: string | undefined } | undefined {
  const jid = parseJid(to);
  if (!jid || jid.domain !== mucDomain(domain)) return undefined;
  if (jid.user === '') return { room: undefined };
  const room = roomOf(jid, domain);
  if (room === undefined || jid.resource !== '') throw new StanzaError('item-not-found');
  return { room };
}

/** Who an IQ is for: the server, the user's own account, or another user. */
function addressee(to: string | undefined, ctx: IqContext): 'server' | 'self' | 'user' {
  if (to === undefined) return 'self';
  const jid = parseJid(to);
  if (!jid) throw new StanzaError('jid-malformed');
  if (jid.domain !== ctx.domain) throw new StanzaError('remote-server-not-found');
  if (jid.user === '') {
    if (jid.resource !== '') throw new StanzaError('service-unavailable');
    return 'server';
  }
  if (jid.user === ctx.user && (jid.resource === '' || jid.resource === ctx.resource)) return 'self';
  return 'user';
}

/** Features advertised in disco#info (of the server and of accounts alike). */
export const FEATURES = [
  NS.DISCO_INFO,
  NS.DISCO_ITEMS,
  NS.PING,
  NS.SID,
  NS.DELAY,
  NS.RECEIPTS,
  NS.CHAT_STATES,
  NS.MARKERS,
  NS.CORRECT,
  NS.RETRACT,
  NS.CARBONS,
  NS.MAM,
] as const;

/** XEP-0030 info of the server or of a user's account. */
function discoInfo(server: boolean): string {
  const features = FEATURES;
  return el('query', { xmlns: NS.DISCO_INFO }, [
    server ? el('identity', { category: 'server', type: 'im', name: 'Herald' }) : el('identity', { category: 'account', type: 'registered' }),
    ...features.map((f) => el('feature', { var: f })),
  ]);
}
