/**
 * Nchan's CORS handling: origin checks, preflight answers and exposed headers. Unlike Nchan,
 * which echoes any Origin with `Access-Control-Allow-Credentials` by default, credentials are
 * granted only to an Origin the route's `allowOrigin` lists, one of `allowedOrigins`, or the
 * node's own; WebSocket upgrades on a route without `allowOrigin` follow `allowedOrigins`.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import type { NetPolicy } from '../../core/net-policy.js';
import type { NchanRoute } from './routes.js';

/** Allow-Headers Nchan sends on a subscriber preflight. */
const SUB_ALLOW_HEADERS = 'If-None-Match, If-Modified-Since, Content-Type, Cache-Control, X-EventSource-Event';

/** The request's Origin header, if any. */
export function originOf(req: IncomingMessage): string | undefined {
  const o = req.headers.origin;
  return typeof o === 'string' && o !== '' ? o : undefined;
}

/** Whether the request's Origin is allowed on the route (no Origin is always allowed). */
export function originAllowed(route: NchanRoute, req: IncomingMessage): boolean {
  const origin = originOf(req);
  if (!origin || !route.allowOrigin) return true;
  return route.allowOrigin.includes(origin) || route.allowOrigin.includes('*');
}

/**
 * Whether a WebSocket upgrade's Origin is allowed: the route's `allowOrigin` when set, else the
 * node's `allowedOrigins` (or its own origin). A browser sends cookies with every upgrade and
 * no CORS protects the answer, so a route without a list does not accept every page.
 */
export function upgradeOriginAllowed(route: NchanRoute, req: IncomingMessage, net: NetPolicy): boolean {
  if (route.allowOrigin) return originAllowed(route, req);
  return net.originAllowed(originOf(req), req.headers.host);
}

/**
 * Whether the request's Origin may get credentialed answers (and have its cookies passed to
 * hooks): the route allows credentials, and the route's `allowOrigin` lists the Origin by name,
 * or it is one of `allowedOrigins` or the node's own.
 */
export function credentialed(route: NchanRoute, req: IncomingMessage, net: NetPolicy): boolean {
  const origin = originOf(req);
  if (!origin || !route.allowCredentials) return false;
  return route.allowOrigin?.includes(origin) === true || net.originCredentialed(origin, req.headers.host);
}

/** CORS headers for a response to a request with an allowed Origin. */
export function corsHeaders(route: NchanRoute, req: IncomingMessage, net: NetPolicy, message = false): OutgoingHttpHeaders {
  const origin = originOf(req);
  if (!origin) return {};
  const h: OutgoingHttpHeaders = {};
  if (message) h['Access-Control-Expose-Headers'] = 'Last-Modified, Etag, Content-Type';
  if (credentialed(route, req, net)) h['Access-Control-Allow-Credentials'] = 'true';
  h['Access-Control-Allow-Origin'] = origin;
  return h;
}

/** Headers of the answer to OPTIONS on a route: without an Origin only `Allow` (as Nchan). */
export function preflightHeaders(route: NchanRoute, req: IncomingMessage, net: NetPolicy): OutgoingHttpHeaders {
  // A pubsub route allows the publisher's methods with the subscriber's headers (as Nchan).
  const methods = route.role === 'subscriber' ? 'GET' : 'GET, POST, PUT, DELETE';
  if (!originOf(req)) return { 'Content-Length': '0', Allow: methods };
  return {
    'Content-Length': '0',
    Allow: methods,
    'Access-Control-Allow-Headers': route.role === 'publisher' ? 'Content-Type' : SUB_ALLOW_HEADERS,
    'Access-Control-Allow-Methods': methods,
    ...corsHeaders(route, req, net),
  };
}
