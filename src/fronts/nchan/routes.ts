/**
 * The front's routes: configured routes with Nchan's defaults filled in, and the matching of a
 * request URL to a route and its channel ids.
 */
import {
  DEFAULT_NCHAN_BUFFER_LENGTH,
  DEFAULT_NCHAN_MAX_CHANNEL_ID_LENGTH,
  DEFAULT_NCHAN_MESSAGE_TIMEOUT_MS,
  DEFAULT_NCHAN_SUBSCRIBER_TYPES,
  type NchanRouteConfig,
  type NchanSubscriberType,
} from '../../core/config-nchan.js';
import { MAX_MULTIPLEX } from './ids.js';

/** A route with every option resolved. */
export interface NchanRoute {
  readonly path: string;
  readonly prefix: boolean;
  readonly role: 'publisher' | 'subscriber' | 'pubsub' | 'status';
  readonly types: ReadonlySet<NchanSubscriberType>;
  readonly splitDelimiter: string | undefined;
  /** Messages kept per channel when publishing here (0 = none). */
  readonly bufferLength: number;
  /** Message lifetime when publishing here, ms (0 = forever). */
  readonly messageTimeoutMs: number;
  /** 0 = wait forever. */
  readonly subscriberTimeoutMs: number;
  /** `oldest`, `newest`, N (start at the N-th oldest) or -N (the N newest). */
  readonly firstMessage: 'oldest' | 'newest' | number;
  readonly existingChannelsOnly: boolean;
  readonly maxChannelIdLength: number;
  /** undefined = any Origin (echoed). */
  readonly allowOrigin: readonly string[] | undefined;
  readonly allowCredentials: boolean;
  readonly authorizeUrl: string | undefined;
  readonly subscribeUrl: string | undefined;
  readonly unsubscribeUrl: string | undefined;
  readonly publishUpstreamUrl: string | undefined;
  readonly channelEvents: boolean;
  /** `event: ping` interval for EventSource subscribers, ms (0 = none). */
  readonly eventsourcePingIntervalMs: number;
  /** Ping frame interval for WebSocket subscribers, ms (0 = none). */
  readonly websocketPingIntervalMs: number;
  /** Channel group; `meta` reads channel events. undefined = the default group. */
  readonly group: string | undefined;
}

/** Fill in Nchan's defaults. */
export function resolveRoute(r: NchanRouteConfig): NchanRoute {
  return {
    path: r.path,
    prefix: r.path.endsWith('/'),
    role: r.role,
    types: new Set(r.types ?? DEFAULT_NCHAN_SUBSCRIBER_TYPES),
    splitDelimiter: r.splitDelimiter,
    bufferLength: r.storeMessages === false ? 0 : (r.bufferLength ?? DEFAULT_NCHAN_BUFFER_LENGTH),
    messageTimeoutMs: r.messageTimeoutMs ?? DEFAULT_NCHAN_MESSAGE_TIMEOUT_MS,
    subscriberTimeoutMs: r.subscriberTimeoutMs ?? 0,
    firstMessage: r.firstMessage ?? 'oldest',
    existingChannelsOnly: r.existingChannelsOnly ?? false,
    maxChannelIdLength: r.maxChannelIdLength ?? DEFAULT_NCHAN_MAX_CHANNEL_ID_LENGTH,
    allowOrigin: r.allowOrigin,
    allowCredentials: r.allowCredentials ?? true,
    authorizeUrl: r.authorizeUrl,
    subscribeUrl: r.subscribeUrl,
    unsubscribeUrl: r.unsubscribeUrl,
    publishUpstreamUrl: r.publishUpstreamUrl,
    channelEvents: r.channelEvents ?? false,
    eventsourcePingIntervalMs: r.eventsourcePingIntervalMs ?? 0,
    websocketPingIntervalMs: r.websocketPingIntervalMs ?? 0,
    group: r.group,
  };
}

/** A request matched to a route. */
export interface RouteMatch {
  readonly route: NchanRoute;
  /** The raw channel id text (before splitting); may be empty. */
  readonly idText: string;
}

/** Find the route for a path (longest matching path wins). */
export function matchRoute(routes: readonly NchanRoute[], url: URL): RouteMatch | undefined {
  let best: NchanRoute | undefined;
  for (const r of routes) {
    const hit = r.prefix ? url.pathname.startsWith(r.path) : url.pathname === r.path;
    if (hit && (!best || r.path.length > best.path.length)) best = r;
  }
  if (!best) return undefined;
  let idText: string;
  if (best.prefix) {
    try {
      idText = decodeURIComponent(url.pathname.slice(best.path.length));
    } catch {
      idText = url.pathname.slice(best.path.length);
    }
  } else {
    idText = url.searchParams.get('id') ?? '';
  }
  return { route: best, idText };
}

/** Why channel ids were refused. */
export type IdProblem = 'empty' | 'too-long' | 'too-many' | 'invalid';

const ID_RE = /^[A-Za-z0-9_\-.:@=+!~#]+$/;

/**
 * Split and check the channel ids of a request. Ids are 1..maxChannelIdLength characters
 * (the whole list counts, as in Nchan) of `A-Z a-z 0-9 _ - . : @ = + ! ~ #`, at most 255.
 */
export function channelIds(route: NchanRoute, idText: string, coreMax: number): string[] | IdProblem {
  if (idText === '') return 'empty';
  if (idText.length > route.maxChannelIdLength) return 'too-long';
  const ids = route.splitDelimiter ? idText.split(route.splitDelimiter) : [idText];
  if (ids.length > MAX_MULTIPLEX) return 'too-many';
  for (const id of ids) {
    if (id === '') return 'empty';
    if (id.length > coreMax) return 'too-long';
    if (!ID_RE.test(id)) return 'invalid';
  }
  return ids;
}

/** The core channel of an Nchan channel id in a group. */
export function coreChannel(group: string | undefined, id: string): string {
  return group ? `${group}/${id}` : id;
}
