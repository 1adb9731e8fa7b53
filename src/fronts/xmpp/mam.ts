/**
 * Message archive management (XEP-0313, `urn:xmpp:mam:2`) over `im.history`: a user queries the
 * archive of one of its direct conversations (`with` = the peer's bare JID), paged with result
 * set management (XEP-0059: `max`, `after`, `before`, an empty `before` for the last page) and
 * filtered by time (`start`, `end`).
 *
 * Guarantees: a user reads only its own archive (a query addressed to another user is answered
 * `forbidden` before it gets here) and only conversations it is a member of, from the seq it
 * joined at (im.history's rule); RSM ids are message ids, and an id from another conversation
 * is `item-not-found`; a page holds at most `MAX_PAGE` messages (`message` entries: edits are
 * shown applied, recalled messages as tombstones, edit/recall/member entries are not listed).
 * Filling a page reads at most `MAX_SCAN_BATCHES` × `SCAN_BATCH` entries; a page cut short by
 * that bound is not `complete` and its `first`/`last` let the client go on. `complete` is set
 * only once the conversation's end in the paging direction is reached.
 */
import type { ImService } from '../../core/im/service.js';
import { directConversationId } from '../../core/im/service.js';
import type { StoredMessage } from '../../core/im/store.js';
import { MAX_ID_LENGTH } from './chat.js';
import { StanzaError } from './errors.js';
import { bareJid, parseJid } from './jid.js';
import { archiveResultXml, chatMessageXml, imMessageOf } from './render.js';
import { el, esc, NS, type XmlElement } from './xml.js';

/** Default page size when the client gives no `max`. */
export const DEFAULT_PAGE = 50;
/** Largest page. */
export const MAX_PAGE = 100;
/** Entries read from the conversation per batch while filling a page. */
const SCAN_BATCH = 100;
/** Most batches read for one page (edits, recalls, member events and time filters skip entries). */
const MAX_SCAN_BATCHES = 10;

/** A parsed archive query. */
export interface MamQuery {
  readonly queryId: string | undefined;
  /** The peer of the direct conversation. */
  readonly with: string;
  readonly start: number | undefined;
  readonly end: number | undefined;
  readonly max: number;
  readonly after: string | undefined;
  /** A message id, or true for the last page (an empty `<before/>`). */
  readonly before: string | true | undefined;
}

/** Parse `<query xmlns="urn:xmpp:mam:2">` of an IQ set; throws StanzaError for what it cannot answer. */
export function parseMamQuery(q: XmlElement, domain: string): MamQuery {
  const queryId = q.attr('queryid');
  if (queryId !== undefined && queryId.length > MAX_ID_LENGTH) throw new StanzaError('bad-request', 'queryid is too long');
  const fields = new Map<string, string>();
  const form = q.child('x', NS.DATA);
  if (form) {
    for (const f of form.elements()) {
      if (f.local !== 'field') continue;
      const name = f.attr('var');
      if (name === undefined) throw new StanzaError('bad-request', 'A form field needs a var');
      fields.set(name, f.childText('value', NS.DATA) ?? '');
    }
  }
  for (const name of fields.keys()) {
    if (name !== 'FORM_TYPE' && name !== 'with' && name !== 'start' && name !== 'end')
      throw new StanzaError('feature-not-implemented', `Unsupported archive filter: ${name.slice(0, 32)}`);
  }
  if (fields.has('FORM_TYPE') && fields.get('FORM_TYPE') !== NS.MAM) throw new StanzaError('bad-request', `FORM_TYPE must be ${NS.MAM}`);
  const withText = fields.get('with');
  if (withText === undefined) throw new StanzaError('feature-not-implemented', 'Give `with`: the archive is queried one conversation at a time');
  const peer = parseJid(withText);
  if (!peer || peer.user === '') throw new StanzaError('jid-malformed', '`with` must be a user JID');
  if (peer.domain !== domain) throw new StanzaError('item-not-found', 'Only users of this server have archives here');
  const set = q.child('set', NS.RSM);
  const maxText = set?.childText('max', NS.RSM);
  if (maxText !== undefined && !/^\d{1,6}$/.test(maxText.trim())) throw new StanzaError('bad-request', 'max must be a non-negative integer');
  const after = set?.childText('after', NS.RSM);
  const beforeEl = set?.child('before', NS.RSM);
  const beforeText = beforeEl?.text();
  if (after !== undefined && beforeEl !== undefined) throw new StanzaError('bad-request', 'Give after or before, not both');
  for (const id of [after, beforeText]) {
    if (id !== undefined && id.length > MAX_ID_LENGTH) throw new StanzaError('item-not-found', 'Unknown archive id');
  }
  if (after === '') throw new StanzaError('bad-request', 'after needs an id');
  return {
    queryId,
    with: peer.user,
    start: time(fields.get('start'), 'start'),
    end: time(fields.get('end'), 'end'),
    max: Math.min(maxText === undefined ? DEFAULT_PAGE : Number(maxText.trim()), MAX_PAGE),
    after,
    before: beforeEl === undefined ? undefined : beforeText === '' ? true : beforeText,
  };
}

/** An XEP-0082 date-time, ms. */
function time(text: string | undefined, name: string): number | undefined {
  if (text === undefined) return undefined;
  const t = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:Z|[+-]\d\d:\d\d)$/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(t)) throw new StanzaError('bad-request', `${name} must be an XEP-0082 date-time`);
  return t;
}

/** Who asks. */
export interface MamContext {
  readonly im: ImService;
  readonly domain: string;
  readonly user: string;
  /** The bound full JID (results are sent to it). */
  readonly jid: string;
  /** Write one result stanza. */
  write(xml: string): void;
}

/** Run a query: write the results, return the `<fin/>` payload of the IQ result. */
export async function runMamQuery(query: MamQuery, ctx: MamContext): Promise<string> {
  const { im, user, domain } = ctx;
  const conversation = directConversationId(user, query.with);
  const seqOf = async (id: string): Promise<number> => {
    const m = await im.message(user, id).catch(() => undefined);
    if (!m || m.conversation !== conversation) throw new StanzaError('item-not-found', 'Unknown archive id');
    return m.seq;
  };
  const backward = query.before !== undefined;
  let cursor = backward ? (typeof query.before === 'string' ? await seqOf(query.before) : undefined) : query.after === undefined ? 0 : await seqOf(query.after);
  const shown = (m: StoredMessage): boolean =>
    m.kind === 'message' && (query.start === undefined || m.time >= query.start) && (query.end === undefined || m.time <= query.end);
  // Read batches until the page is full (plus one, to know whether more follow) or the conversation ends.
  const found: StoredMessage[] = [];
  let scanned: StoredMessage | undefined;
  let exhausted = false;
  for (let round = 0; round < MAX_SCAN_BATCHES && found.length <= query.max; round++) {
    const got = await im
      .history(user, conversation, backward ? { before: cursor, limit: SCAN_BATCH } : { after: cursor!, limit: SCAN_BATCH })
      .catch((err: unknown) => {
        // A conversation never started has an empty archive.
        if ((err as { code?: string }).code === 'HERALD_ERR_IM_UNKNOWN_CONVERSATION') return [];
        throw err;
      });
    for (const m of got) if (shown(m)) found.push(m);
    scanned = got.at(-1) ?? scanned;
    if (got.length < SCAN_BATCH) {
      exhausted = true;
      break;
    }
    cursor = scanned!.seq;
  }
  const complete = exhausted && found.length <= query.max;
  const page = found.slice(0, query.max);
  if (backward) page.reverse();
  const owner = bareJid(user, domain);
  for (const s of page) {
    const m = imMessageOf(s);
    const peer = s.sender === user ? query.with : user;
    const inner = chatMessageXml(m, { from: bareJid(s.sender, domain), to: bareJid(peer, domain), by: owner }, domain, false);
    if (inner !== undefined) ctx.write(archiveResultXml(inner, m, query.queryId, owner, ctx.jid));
  }
  // An empty page that is not the end still gives the client a place to go on from.
  const first = page[0] ?? scanned;
  const last = page.at(-1) ?? scanned;
  return el('fin', { xmlns: NS.MAM, complete: complete ? 'true' : undefined }, [
    el('set', { xmlns: NS.RSM }, [first && el('first', {}, [esc(first.id)]), last && el('last', {}, [esc(last.id)])]),
  ]);
}

/** The query form (an IQ get): the filters this archive supports. */
export function mamFormXml(): string {
  return el('query', { xmlns: NS.MAM }, [
    el('x', { xmlns: NS.DATA, type: 'form' }, [
      el('field', { var: 'FORM_TYPE', type: 'hidden' }, [el('value', {}, [NS.MAM])]),
      el('field', { var: 'with', type: 'jid-single' }),
      el('field', { var: 'start', type: 'text-single' }),
      el('field', { var: 'end', type: 'text-single' }),
    ]),
  ]);
}
