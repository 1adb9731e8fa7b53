/**
 * Nchan's HTTP hooks, sent by Herald directly to the configured URLs: the authorize request
 * (any 2xx allows; any other answer goes back to the client as is; unreachable → 502; too
 * slow → 504), the subscribe / unsubscribe callbacks (fire and forget) and the publisher
 * upstream request (200 replaces the message, 304 keeps it, 204 drops it, anything else → 403).
 */
import type { IncomingMessage } from 'node:http';

/** A hook answer to hand to the client unchanged. */
export interface HookReply {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/** Request headers not forwarded to hooks. */
const SKIP_REQ = new Set([
  'host',
  'connection',
  'upgrade',
  'content-length',
  'transfer-encoding',
  'keep-alive',
  'te',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'expect',
]);
/** Response headers not passed back to clients. */
const SKIP_RES = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'date', 'server']);

/** Credentials a browser attaches by itself: not forwarded for a page that may not use them. */
const AMBIENT = new Set(['cookie', 'authorization']);

/**
 * Headers describing the request for a hook: the client's headers plus Nchan's variables.
 * `ambient` false drops the cookies and `Authorization` a browser attached on its own to a
 * request from a page whose origin may not use credentials here.
 */
export function hookHeaders(req: IncomingMessage, channel: string, extra: Record<string, string>, ambient = true): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || SKIP_REQ.has(k) || (!ambient && AMBIENT.has(k))) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  out['x-channel-id'] = channel;
  out['x-original-uri'] = req.url ?? '/';
  out['x-forwarded-for'] = req.socket.remoteAddress ?? '';
  for (const [k, v] of Object.entries(extra)) out[k.toLowerCase()] = v;
  return out;
}

function replyHeaders(h: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  h.forEach((v, k) => {
    if (!SKIP_RES.has(k)) out[k] = v;
  });
  return out;
}

async function call(url: string, init: RequestInit, timeoutMs: number): Promise<HookReply> {
  let r: Response;
  try {
    r = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
  } catch (err) {
    const name = (err as Error).name;
    const status = name === 'TimeoutError' || name === 'AbortError' ? 504 : 502;
    return { status, headers: {}, body: Buffer.alloc(0) };
  }
  try {
    return { status: r.status, headers: replyHeaders(r.headers), body: Buffer.from(await r.arrayBuffer()) };
  } catch {
    return { status: 502, headers: {}, body: Buffer.alloc(0) };
  }
}

/** Ask the authorize hook. Resolves undefined when allowed, else the reply to send. */
export async function authorize(url: string, headers: Record<string, string>, timeoutMs: number): Promise<HookReply | undefined> {
  const r = await call(url, { method: 'GET', headers }, timeoutMs);
  return r.status >= 200 && r.status < 300 ? undefined : r;
}

/** Send a subscribe / unsubscribe callback; errors are ignored. */
export function callback(url: string, headers: Record<string, string>, timeoutMs: number): void {
  void call(url, { method: 'GET', headers }, timeoutMs);
}

/** Outcome of the publisher upstream hook. */
export type UpstreamResult =
  | { readonly action: 'publish'; readonly payload: Buffer; readonly contentType: string | undefined }
  | { readonly action: 'drop' }
  | { readonly action: 'fail'; readonly status: number };

/** Run the publisher upstream hook for a message. */
export async function publishUpstream(
  url: string,
  headers: Record<string, string>,
  payload: Buffer,
  contentType: string | undefined,
  timeoutMs: number,
): Promise<UpstreamResult> {
  const h = { ...headers };
  if (contentType) h['content-type'] = contentType;
  else delete h['content-type'];
  const r = await call(url, { method: 'POST', headers: h, body: new Uint8Array(payload) }, timeoutMs);
  if (r.status === 200) return { action: 'publish', payload: r.body, contentType: r.headers['content-type'] };
  if (r.status === 304) return { action: 'publish', payload, contentType };
  if (r.status === 204) return { action: 'drop' };
  return { action: 'fail', status: r.status === 502 || r.status === 504 ? r.status : 403 };
}
