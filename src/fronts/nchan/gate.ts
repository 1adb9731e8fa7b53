/**
 * The Nchan front's access gate: who may publish (`nchan.publishAccess`), which core channels
 * Nchan clients may read and write, channel-id checks, and the subscriber request plan (start
 * position, existing-only, authorize hook). It answers with an Nchan refusal (status, headers,
 * body to send as is) and never writes a response itself.
 */
import type { IncomingMessage } from 'node:http';
import type { NchanSubscriberType } from '../../core/config-nchan.js';
import type { HeraldCore } from '../../core/core.js';
import { keyEquals } from '../../core/net-policy.js';
import { apiAuthorized, requestApiKey, requestFacts } from '../../transports/http.js';
import { corsHeaders, credentialed } from './cors.js';
import { authorize, hookHeaders } from './hooks.js';
import { InvalidMessageIdError, parseCompoundId, parseTags } from './ids.js';
import type { NchanChannels } from './publisher.js';
import { channelIds, coreChannel, type NchanRoute } from './routes.js';
import type { StartFrom } from './subscription.js';

/** A request refused before any subscription: status, headers, body. */
export interface Refusal {
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string | Buffer;
}

/** A subscriber request checked and ready to start. */
export interface SubscribePlan {
  readonly route: NchanRoute;
  readonly ids: string[];
  readonly channels: string[];
  readonly from: StartFrom;
}

/**
 * Nchan's answer to a publish refused by the authorize or upstream hook: nginx's 403 error page
 * (without nginx's signature line).
 */
export const FORBIDDEN_PAGE: Refusal = {
  status: 403,
  headers: { 'Content-Type': 'text/html' },
  body: '<html>\r\n<head><title>403 Forbidden</title></head>\r\n<body>\r\n<center><h1>403 Forbidden</h1></center>\r\n</body>\r\n</html>\r\n',
};

/** Access checks of one front. */
export class NchanGate {
  readonly #core: HeraldCore;
  readonly #channels: NchanChannels;

  constructor(core: HeraldCore, channels: NchanChannels) {
    this.#core = core;
    this.#channels = channels;
  }

  /**
   * Whether the request may publish, delete or read channel info on `route` (publishAccess):
   * `any`; `key` = the API key only; `loopback-or-key` = the server API's rule (the key when one
   * is configured, else loopback trust, which a browser request from another site only gets
   * when the route's `allowOrigin` or `allowedOrigins` lists its Origin). Keys are compared in
   * constant time.
   */
  mayPublish(req: IncomingMessage, route: NchanRoute): boolean {
    const access = this.#core.config.nchan.publishAccess;
    if (access === 'any') return true;
    const key = this.#core.config.apiKey;
    if (access === 'key' || key !== undefined) return keyEquals(requestApiKey(req), key);
    if (apiAuthorized(req, key, this.#core.net)) return true;
    const origin = req.headers.origin;
    const facts = requestFacts(req);
    if (origin === undefined) return false;
    const listed = route.allowOrigin?.includes(origin) === true || this.#core.net.originCredentialed(origin, facts.host);
    return listed && this.#core.net.hostAllowed(facts.host) && this.#core.net.loopbackTrusted(facts);
  }

  /** Whether the browser's own credentials (cookies) on this request may reach the hooks: no Origin, or a credentialed one. */
  #ambient(route: NchanRoute, req: IncomingMessage): boolean {
    return req.headers.origin === undefined || credentialed(route, req, this.#core.net);
  }

  /** Whether the request may read `/nchan_stub_status` (node-wide counters): the server API's authority only. */
  mayReadStatus(req: IncomingMessage): boolean {
    return apiAuthorized(req, this.#core.config.apiKey, this.#core.net);
  }

  /**
   * Whether Nchan subscribers may read a core channel: never a reserved namespace (IM inboxes),
   * and a channel whose policy needs a token only through a route with an authorize hook.
   */
  readable(route: NchanRoute, channel: string): boolean {
    if (!this.#core.reservedAllows(undefined, channel)) return false;
    return !this.#core.policy(channel).requireToken || route.authorizeUrl !== undefined;
  }

  /** Whether Nchan publishers may write a core channel: never a reserved namespace. */
  writable(channel: string): boolean {
    return this.#core.reservedAllows(undefined, channel);
  }

  /**
   * Run a publisher route's authorize hook. Unlike for subscribers, Nchan answers any refusal
   * with 403 (an unreachable or slow hook keeps its 502 / 504).
   */
  async authorizePublisher(route: NchanRoute, idText: string, req: IncomingMessage, type: 'http' | 'websocket'): Promise<Refusal | undefined> {
    if (!route.authorizeUrl) return undefined;
    const denied = await authorize(
      route.authorizeUrl,
      hookHeaders(req, idText, { 'X-Publisher-Type': type }, this.#ambient(route, req)),
      this.#core.config.nchan.hookTimeoutMs,
    );
    if (!denied) return undefined;
    return denied.status === 502 || denied.status === 504 ? { status: denied.status } : FORBIDDEN_PAGE;
  }

  /** Check ids for a route; a Refusal when unusable. */
  checkIds(route: NchanRoute, idText: string): string[] | Refusal {
    const ids = channelIds(route, idText, this.#core.config.limits.maxChannelNameLength);
    if (ids === 'empty' || ids === 'invalid')
      return { status: 400, headers: { 'Content-Type': 'text/plain' }, body: ids === 'empty' ? 'No channel id provided.' : 'Invalid channel id.' };
    if (typeof ids === 'string') return { status: 403 };
    return ids;
  }

  /**
   * Check a publisher request: publish access (for writes, POST, PUT, DELETE, WebSocket frames,
   * and for channel info, GET and HEAD; a pubsub WebSocket that only subscribes passes
   * `guarded` false), ids, writable channels, the authorize hook. Resolves the ids or a refusal.
   */
  async planPublish(route: NchanRoute, idText: string, req: IncomingMessage, type: 'http' | 'websocket', guarded: boolean): Promise<string[] | Refusal> {
    if (guarded && !this.mayPublish(req, route)) return { status: 403 };
    const ids = this.checkIds(route, idText);
    if (!Array.isArray(ids)) return ids;
    if (!ids.every((id) => this.writable(coreChannel(route.group, id)))) return { status: 403 };
    return (await this.authorizePublisher(route, idText, req, type)) ?? ids;
  }

  /**
   * Check a subscriber request (ids, start position, existing-only, authorize hook). Resolves
   * the plan or a refusal to send as is.
   */
  async planSubscribe(route: NchanRoute, idText: string, req: IncomingMessage, url: URL, type: NchanSubscriberType): Promise<SubscribePlan | Refusal> {
    // Like Nchan: refusals carry the CORS headers; once the channels are looked up, a poll
    // type's refusal also carries Vary and the exposed headers of a message answer.
    const cors = corsHeaders(route, req, this.#core.net) as Record<string, string>;
    const poll = type === 'longpoll' || type === 'intervalpoll';
    const late = poll ? { Vary: 'If-None-Match, If-Modified-Since', ...(corsHeaders(route, req, this.#core.net, true) as Record<string, string>) } : cors;
    const ids = this.checkIds(route, idText);
    if (!Array.isArray(ids)) return { ...ids, headers: { ...ids.headers, ...cors } };
    let from: StartFrom;
    try {
      from = startFrom(req, url, ids.length, route.firstMessage);
    } catch (err) {
      if (err instanceof InvalidMessageIdError) return { status: 400, headers: { 'Content-Type': 'text/plain', ...cors }, body: 'Message ID invalid' };
      throw err;
    }
    const channels = ids.map((id) => coreChannel(route.group, id));
    for (const ch of channels) if (!this.readable(route, ch)) return { status: 403, headers: cors };
    if (route.existingChannelsOnly) {
      for (const ch of channels) if (!(await this.#channels.exists(ch))) return { status: 403, headers: late };
    }
    if (route.authorizeUrl) {
      const denied = await authorize(
        route.authorizeUrl,
        hookHeaders(req, idText, { 'X-Subscriber-Type': type }, this.#ambient(route, req)),
        this.#core.config.nchan.hookTimeoutMs,
      );
      if (denied) return { status: denied.status, headers: { ...denied.headers, ...late }, body: denied.body };
    }
    return { route, ids, channels, from };
  }
}

/**
 * Where a subscriber starts (Nchan's order): If-Modified-Since + If-None-Match; a compound id
 * in If-None-Match; `Last-Event-ID` or `?last_event_id=`; else the route's first message.
 * Throws InvalidMessageIdError for a malformed id.
 */
export function startFrom(req: IncomingMessage, url: URL, count: number, first: 'oldest' | 'newest' | number): StartFrom {
  const ims = req.headers['if-modified-since'];
  const inm = req.headers['if-none-match'];
  if (ims) {
    const t = Math.floor(Date.parse(ims) / 1000);
    // Nchan reads the tags from If-None-Match; a time without them is an invalid id.
    if (t > 0) {
      if (!inm) throw new InvalidMessageIdError();
      return { kind: 'after', id: { time: t, tags: parseTags(inm, count) } };
    }
  }
  if (inm) {
    const id = parseCompoundId(inm, count);
    if (id && id.time > 0) return { kind: 'after', id };
  }
  const lei = headerValue(req.headers['last-event-id']) ?? url.searchParams.get('last_event_id') ?? undefined;
  if (lei) {
    const id = parseCompoundId(lei, count);
    if (id && id.time > 0) return { kind: 'after', id };
  }
  return typeof first === 'number' ? { kind: 'nth', n: first } : { kind: first };
}

/**
 * The tag part of the resume position exactly as the request gave it (brackets kept), in
 * startFrom's order; Nchan sends it back as the Etag of a 410.
 */
export function resumeTags(req: IncomingMessage, url: URL): string | undefined {
  const inm = headerValue(req.headers['if-none-match']);
  if (req.headers['if-modified-since'] && inm) return inm;
  const id = inm ?? headerValue(req.headers['last-event-id']) ?? url.searchParams.get('last_event_id') ?? undefined;
  const i = id?.indexOf(':') ?? -1;
  return i < 0 ? undefined : id!.slice(i + 1);
}

function headerValue(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  return s === '' ? undefined : s;
}
