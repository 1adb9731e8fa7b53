/**
 * HTTP helpers shared by the API and the HTTP transports: bounded body reading, JSON replies and
 * the one error handler that answers `{code, message}` (unknown errors become a bare 500).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HeraldError, logFailure, toHeraldError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
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

/** Send a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...headers });
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

/** The client address of a request, without the IPv4-mapped prefix. */
export function remoteAddress(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

/** Whether a request comes from the loopback interface. */
export function isLoopbackRequest(req: IncomingMessage): boolean {
  const a = remoteAddress(req);
  return a === '::1' || a.startsWith('127.');
}

/** The API key a request carries (`Authorization: apikey <key>`, else `X-Api-Key`), if any. */
export function requestApiKey(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('apikey ')) return auth.slice(7);
  const header = req.headers['x-api-key'];
  return typeof header === 'string' ? header : undefined;
}

/** Whether a given secret (API key) equals the expected one, compared in constant time. */
export function secretEquals(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const g = Buffer.from(given);
  const e = Buffer.from(expected);
  return g.length === e.length && timingSafeEqual(g, e);
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
