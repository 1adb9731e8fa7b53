/**
 * The server API for backends (`/api/*`), documented in docs/api.md: publish, channel info,
 * channel list, channel delete, stats. Protected by the API key (`Authorization: apikey <key>`
 * or `X-API-Key`, compared in constant time) or, with `trustLoopback`, served to loopback
 * clients. Browser requests from other sites and unknown Host headers are refused first
 * (CSRF and DNS-rebinding guard), and request bodies must be JSON unless a route takes raw ones.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { HeraldCore } from '../core/core.js';
import { HeraldError } from '../core/errors.js';
import { JSON_CONTENT_TYPE, type PublicationInput } from '../core/publication.js';
import { formatPosition } from '../protocol/position.js';
import { hasAdminSession } from './admin-session.js';
import { apiAuthorized, hasBody, mediaType, parseBody, parseJson, readBody, requestFacts, sendJson } from '../transports/http.js';

/** URL prefix of the server API. */
export const API_PREFIX = '/api/';

const publishBody = z
  .object({
    channel: z.string().optional(),
    channels: z.array(z.string()).min(1).max(1000).optional(),
    data: z.unknown(),
    event: z.string().max(256).optional(),
  })
  .strict()
  .refine((b) => (b.channel === undefined) !== (b.channels === undefined), { message: 'give exactly one of `channel` or `channels`' })
  .refine((b) => b.data !== undefined, { message: '`data` is required' });

/** Decode a percent-encoded path segment; 400 when the encoding is malformed. */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Malformed percent-encoding in the path');
  }
}

/** A route handler; returns the JSON body (status 200) or throws a HeraldError. */
type Handler = (req: IncomingMessage, url: URL, params: string[]) => Promise<unknown>;

/** Options of one route. */
export interface RouteOptions {
  /** The route reads bodies of any media type itself (default: a body must be application/json). */
  readonly rawBody?: boolean;
}

/** The server API. */
export class ServerApi {
  readonly #core: HeraldCore;
  readonly #routes: Array<{ method: string; re: RegExp; handler: Handler; rawBody: boolean }> = [];
  readonly #stats: Array<[string, () => unknown]> = [];

  constructor(core: HeraldCore) {
    this.#core = core;
    this.route('POST', /^publish$/, (req, url) => this.#publish(req, url), { rawBody: true });
    this.route('GET', /^channels$/, (_req, url) => this.#list(url));
    this.route('GET', /^channels\/(.+)$/, (_req, _url, [ch]) => this.#info(ch!));
    this.route('DELETE', /^channels\/(.+)$/, (_req, _url, [ch]) => this.#delete(ch!));
    this.route('GET', /^stats$/, async () => this.#statsAnswer());
  }

  /** Add a route under `/api/` (used by other services, e.g. the IM). */
  route(method: string, re: RegExp, handler: Handler, options: RouteOptions = {}): void {
    this.#routes.push({ method, re, handler, rawBody: options.rawBody ?? false });
  }

  /** Add a section to `GET /api/stats` (used by fronts, e.g. STOMP's `stompQueues`). */
  addStats(name: string, read: () => unknown): void {
    this.#stats.push([name, read]);
  }

  /**
   * Whether the request carries the API key (compared in constant time), or gets loopback trust
   * (`trustLoopback`; with a key configured the key is always required). A signed-in admin page
   * session (the HttpOnly `herald_admin` cookie) stands for the key on reads only (GET, HEAD):
   * the dashboard never writes, so a cookie the browser attaches on its own can change nothing.
   */
  authorized(req: IncomingMessage): boolean {
    if (apiAuthorized(req, this.#core.config.apiKey, this.#core.net)) return true;
    return (req.method === 'GET' || req.method === 'HEAD') && hasAdminSession(req, this.#core.config.apiKey);
  }

  /**
   * Admit a request to an endpoint with the API's authority (`/api/*`, `/metrics`): throws 403
   * HERALD_ERR_FORBIDDEN for a cross-site request or an unknown Host, 401 without the key.
   */
  admit(req: IncomingMessage): void {
    const refused = this.#core.net.crossSiteReason(requestFacts(req));
    if (refused) throw new HeraldError('HERALD_ERR_FORBIDDEN', refused);
    if (!this.authorized(req)) throw new HeraldError('HERALD_ERR_UNAUTHORIZED', 'API key required (Authorization: apikey <key>)');
  }

  /** Handle `/api/*`; returns false for other paths. Errors are thrown to the caller's handler. */
  async handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (!url.pathname.startsWith(API_PREFIX)) return false;
    this.admit(req);
    const path = url.pathname.slice(API_PREFIX.length);
    let pathMatched = false;
    for (const r of this.#routes) {
      const m = r.re.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (r.method !== req.method) continue;
      if (!r.rawBody && hasBody(req) && mediaType(req) !== 'application/json') {
        throw new HeraldError('HERALD_ERR_UNSUPPORTED_MEDIA_TYPE', 'Request bodies are application/json');
      }
      const params = m.slice(1).map(decodePathPart);
      sendJson(res, 200, await r.handler(req, url, params));
      return true;
    }
    throw new HeraldError(
      pathMatched ? 'HERALD_ERR_METHOD_NOT_ALLOWED' : 'HERALD_ERR_NOT_FOUND',
      pathMatched ? `${req.method} not allowed here` : 'No such API endpoint',
    );
  }

  async #publish(req: IncomingMessage, url: URL): Promise<unknown> {
    const body = await readBody(req, this.#core.config.limits.maxMessageBytes + 4096);
    const type = mediaType(req);
    let channels: string[];
    let input: PublicationInput;
    if (type === 'application/json' && !url.searchParams.has('channel')) {
      const b = parseBody(publishBody, parseJson(body));
      channels = b.channels ?? [b.channel!];
      input = { payload: Buffer.from(JSON.stringify(b.data)), contentType: JSON_CONTENT_TYPE, event: b.event };
    } else {
      // Raw body: channels from ?channel= (repeatable), content type passed through.
      channels = url.searchParams.getAll('channel');
      if (channels.length === 0) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'A raw publish names its channels with ?channel=');
      // Subscribers embed JSON payloads as JSON, so a body declared JSON must be JSON.
      if (type === JSON_CONTENT_TYPE) parseJson(body);
      input = { payload: body, contentType: type || undefined, event: url.searchParams.get('event') ?? undefined };
    }
    for (const c of channels) this.#core.validateChannel(c);
    const results = [];
    for (const channel of channels) {
      const pub = await this.#core.publish(channel, input, 'api');
      results.push({ channel, epoch: pub.epoch, offset: pub.offset, position: formatPosition(pub) });
    }
    return { results };
  }

  async #info(channel: string): Promise<unknown> {
    const info = await this.#core.channelInfo(channel);
    return { ...info, position: formatPosition(info.position), epoch: info.position.epoch, offset: info.position.offset };
  }

  async #list(url: URL): Promise<unknown> {
    const prefix = url.searchParams.get('prefix') ?? '';
    const limitText = url.searchParams.get('limit') ?? '100';
    const limit = Number(limitText);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 10_000) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'limit must be 1-10000');
    const list = await this.#core.channels(prefix, limit);
    return {
      channels: list.map((c) => ({
        channel: c.channel,
        position: formatPosition(c.position),
        buffered: c.buffered,
        subscribers: this.#core.hub.subscriberCount(c.channel),
      })),
    };
  }

  async #delete(channel: string): Promise<unknown> {
    const subscribers = this.#core.hub.subscriberCount(channel);
    const existed = await this.#core.deleteChannel(channel);
    if (!existed && subscribers === 0) throw new HeraldError('HERALD_ERR_CHANNEL_NOT_FOUND');
    return { channel, deleted: true, subscribers };
  }

  #statsAnswer(): unknown {
    const mem = process.memoryUsage();
    return {
      node: this.#core.nodeId,
      dev: this.#core.config.dev,
      ...this.#core.stats(),
      connectionsByTransport: this.#core.hub.connectionsByTransport(),
      memory: { rss: mem.rss, heapUsed: mem.heapUsed },
      ...Object.fromEntries(this.#stats.map(([name, read]) => [name, read()])),
    };
  }
}
