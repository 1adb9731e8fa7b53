/**
 * HTTP helpers shared by the API and the HTTP transports: bounded body reading, JSON replies and
 * the one error handler that answers `{code, message}` (unknown errors become a bare 500).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { z } from 'zod';
import { HeraldError, logFailure, toHeraldError } from '../core/errors.js';
import type { AdmissionRequest } from '../core/client-sessions.js';
import type { Logger } from '../core/logger.js';
import { keyEquals, type NetPolicy, plainAddress, type RequestFacts } from '../core/net-policy.js';
import { MAX_JSON_DEPTH, parsePeerJson } from '../protocol/json.js';

/** Read the whole request body, failing with 413 past `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      req.resume();
      reject(new HeraldError('HERALD_ERR_PAYLOAD_TOO_LARGE', `Body larger than ${limit} bytes`));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new HeraldError('HERALD_ERR_PAYLOAD_TOO_LARGE', `Body larger than ${limit} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks, size)));
    req.on('error', reject);
  });
}

/**
 * Parse a JSON body; 400 HERALD_ERR_MALFORMED_JSON when it is not JSON, 400
 * HERALD_ERR_JSON_TOO_DEEP when it nests deeper than `MAX_JSON_DEPTH`.
 */
export function parseJson(body: Buffer): unknown {
  const r = parsePeerJson(body.toString('utf8'));
  if (r.ok) return r.value;
  if (r.reason === 'depth') throw new HeraldError('HERALD_ERR_JSON_TOO_DEEP', `Request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  throw new HeraldError('HERALD_ERR_MALFORMED_JSON', 'Request body is not valid JSON');
}

/** Validate a parsed body against a schema; 400 HERALD_ERR_BAD_REQUEST listing every problem (`path: message; …`). */
export function parseBody<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new HeraldError('HERALD_ERR_BAD_REQUEST', r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

/** Send a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

/** Send an error as `{code, message}` with its HTTP status. Internal errors are logged, never leaked. */
export function sendError(res: ServerResponse, err: unknown, logger?: Logger): void {
  const e = toHeraldError(err);
  logFailure(logger, e);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, e.status, { code: e.code, message: e.message });
}

/** The TCP peer address of a request, without the IPv4-mapped prefix. */
export function remoteAddress(req: IncomingMessage): string {
  return plainAddress(req.socket.remoteAddress ?? '');
}

/** One header as a string (the first of repeated ones), undefined when absent. */
function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** What the request says about its origin, for the core's NetPolicy. */
export function requestFacts(req: IncomingMessage): RequestFacts {
  const h = req.headers;
  return {
    peer: remoteAddress(req),
    forwardedFor: header(req, 'x-forwarded-for'),
    forwarded: h['x-forwarded-for'] !== undefined || h.forwarded !== undefined || h['x-real-ip'] !== undefined,
    host: header(req, 'host'),
    origin: header(req, 'origin'),
    fetchSite: header(req, 'sec-fetch-site'),
  };
}

/** What the client-session service admits a client on, read from its request. */
export function admissionRequest(req: IncomingMessage, net: NetPolicy, front: string, transport: string, poll?: boolean): AdmissionRequest {
  const facts = requestFacts(req);
  return {
    ip: net.clientAddress(facts.peer, facts.forwardedFor),
    origin: facts.origin,
    host: facts.host,
    front,
    transport,
    ...(poll === undefined ? {} : { poll }),
  };
}

/** The media type of a request body (lower-case, without parameters); "" when absent. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Whether the request carries a body (a non-zero Content-Length or a chunked one). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/**
 * Whether a request has the server API's authority: the API key when one is configured
 * (compared in constant time), else loopback trust (`trustLoopback`) for a request that is not
 * cross-site and names an allowed Host (ambient authority must not be usable by other sites).
 */
export function apiAuthorized(req: IncomingMessage, apiKey: string | undefined, net: NetPolicy): boolean {
  if (apiKey !== undefined) return keyEquals(requestApiKey(req), apiKey);
  const facts = requestFacts(req);
  return net.loopbackTrusted(facts) && net.crossSiteReason(facts) === undefined;
}

/** The API key a request carries (`Authorization: apikey <key>`, else `X-Api-Key`), if any. */
export function requestApiKey(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('apikey ')) return auth.slice(7);
  const header = req.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

/**
 * Whether a streamed response is still worth writing to: false, and the connection destroyed,
 * once a slow reader has more than `maxBuffered` bytes unsent, so one stuck client cannot hold
 * unbounded memory.
 */
export function aliveOrCut(res: ServerResponse, maxBuffered: number): boolean {
  if (res.writableLength <= maxBuffered) return true;
  res.destroy();
  return false;
}
