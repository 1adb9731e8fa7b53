/** Nchan's CORS handling: origin checks, preflight answers and exposed headers. */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
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

/** CORS headers for a response to a request with an allowed Origin. */
export function corsHeaders(route: NchanRoute, req: IncomingMessage, message = false): OutgoingHttpHeaders {
  const origin = originOf(req);
  if (!origin) return {};
  const h: OutgoingHttpHeaders = {};
  if (message) h['Access-Control-Expose-Headers'] = 'Last-Modified, Etag, Content-Type';
  if (route.allowCredentials) h['Access-Control-Allow-Credentials'] = 'true';
  h['Access-Control-Allow-Origin'] = origin;
  return h;
}

/** Headers of the answer to OPTIONS on a route: without an Origin only `Allow` (as Nchan). */
export function preflightHeaders(route: NchanRoute, req: IncomingMessage): OutgoingHttpHeaders {
  // A pubsub route allows the publisher's methods with the subscriber's headers (as Nchan).
  const methods = route.role === 'subscriber' ? 'GET' : 'GET, POST, PUT, DELETE';
  if (!originOf(req)) return { 'Content-Length': '0', Allow: methods };
  return {
    'Content-Length': '0',
    Allow: methods,
    'Access-Control-Allow-Headers': route.role === 'publisher' ? 'Content-Type' : SUB_ALLOW_HEADERS,
    'Access-Control-Allow-Methods': methods,
    ...corsHeaders(route, req),
  };
}
