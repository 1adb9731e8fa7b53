/**
 * CORS for Herald's own client transports over HTTP (the native SSE, long-poll, stream and
 * command endpoints, the dispatcher): pages on an origin of `allowedOrigins` (or the node's own
 * origin) may use them from a browser, preflight included. No credentials are involved (tokens
 * travel in `Authorization` or the query string, never in cookies), so no answer carries
 * `Access-Control-Allow-Credentials`. A request whose Origin is not allowed is refused before
 * anything runs, so a foreign page cannot make the browser fire commands it cannot read.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { NetPolicy } from '../core/net-policy.js';

/** Request headers a cross-origin client may send (the SDK's token header, JSON bodies, SSE resume). */
const ALLOW_HEADERS = 'authorization, content-type, last-event-id';
/** How long a browser may cache a preflight answer, s. */
const PREFLIGHT_MAX_AGE_S = 600;

/** The CORS verdict for one request. */
export interface CorsVerdict {
  /** False when the request carries an Origin that may not use the transports. */
  readonly allowed: boolean;
  /** Headers to put on every answer (also on errors, so the client can read the error code). */
  readonly headers: Readonly<Record<string, string>>;
}

/** Decide CORS for a request to a client transport. */
export function clientCors(req: IncomingMessage, net: NetPolicy): CorsVerdict {
  const origin = req.headers.origin;
  if (typeof origin !== 'string') return { allowed: true, headers: {} };
  if (!net.originAllowed(origin, req.headers.host)) return { allowed: false, headers: { vary: 'Origin' } };
  return { allowed: true, headers: { 'access-control-allow-origin': origin, vary: 'Origin' } };
}

/** Set the verdict's headers on a response that is yet to be written. */
export function applyCors(res: ServerResponse, verdict: CorsVerdict): void {
  for (const [k, v] of Object.entries(verdict.headers)) res.setHeader(k, v);
}

/** Answer a preflight (OPTIONS) for an allowed origin: 204 with the methods and headers allowed. */
export function answerPreflight(res: ServerResponse, verdict: CorsVerdict, methods: string): void {
  res.writeHead(204, {
    ...verdict.headers,
    'access-control-allow-methods': methods,
    'access-control-allow-headers': ALLOW_HEADERS,
    'access-control-max-age': String(PREFLIGHT_MAX_AGE_S),
    'content-length': '0',
  });
  res.end();
}
