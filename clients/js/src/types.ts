/** Shared types of the SDK. */

/** Transports, in the default order of preference. */
export type TransportName = 'websocket' | 'sse' | 'long-poll';

/** Where a channel's stream stands: the epoch of its history and the offset of the last publication seen. */
export interface Position {
  readonly epoch: string;
  readonly offset: number;
}

/** A publication as pushed by the server. */
export interface Publication<T = unknown> {
  readonly channel: string;
  readonly epoch: string;
  readonly offset: number;
  /** Server time of the publication, ms since the epoch. */
  readonly time: number;
  /** JSON payload, or a string (text payload, or base64 when `encoding` is `base64`). */
  readonly data: T;
  readonly event?: string;
  readonly encoding?: 'base64';
  readonly contentType?: string;
  /** Publisher info (user and client) for client publications. */
  readonly info?: { readonly user?: string; readonly client?: string };
}

/** What a transport needs to know about one subscription when it (re)subscribes. */
export interface WantedChannel {
  readonly channel: string;
  /** Resume after this position (the last publication the application saw). */
  readonly since?: Position;
  /** On a first subscribe without `since`: replay the last N publications. */
  readonly last?: number;
}

/** Result of opening a transport. */
export interface ConnectInfo {
  readonly transport: TransportName;
  /** Server-side client id (WebSocket only; HTTP transports have none). */
  readonly client?: string;
  readonly user?: string;
}

/** Format a position as `<epoch>:<offset>`. */
export function formatPosition(p: Position): string {
  return `${p.epoch}:${p.offset}`;
}

/** Parse `<epoch>:<offset>`; undefined when malformed. */
export function parsePosition(text: string): Position | undefined {
  const i = text.lastIndexOf(':');
  if (i <= 0) return undefined;
  const offset = Number(text.slice(i + 1));
  if (!Number.isSafeInteger(offset) || offset < 0) return undefined;
  return { epoch: text.slice(0, i), offset };
}

/** Minimal WebSocket shape the SDK uses (the browser's, or `ws` in Node). */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
/** A WebSocket constructor. */
export type WebSocketCtor = new (url: string) => WebSocketLike;

/** Minimal EventSource shape (the browser's, or the `eventsource` package in Node). */
export interface EventSourceLike {
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: string; lastEventId: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(): void;
}
/** An EventSource constructor. */
export type EventSourceCtor = new (url: string) => EventSourceLike;

/** The fetch function. */
export type FetchFn = (input: string, init?: RequestInit) => Promise<Response>;

/** The `exp` claim of a JWT (seconds since the epoch; not verified), if any. */
export function tokenExpiry(token: string | undefined): number | undefined {
  const exp = tokenClaims(token)?.exp;
  return typeof exp === 'number' ? exp : undefined;
}

/** The claims of a JWT (not verified: the server does that), or undefined when it is not one. */
function tokenClaims(token: string | undefined): Record<string, unknown> | undefined {
  const part = token?.split('.')[1];
  if (!part) return undefined;
  try {
    const json = atob(
      part
        .replace(/-/g, '+')
        .replace(/_/g, '/')
        .padEnd(Math.ceil(part.length / 4) * 4, '='),
    );
    const claims: unknown = JSON.parse(json);
    return typeof claims === 'object' && claims !== null ? (claims as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The `sub` claim of a JWT (not verified), if any. */
export function tokenSubject(token: string | undefined): string | undefined {
  const sub = tokenClaims(token)?.sub;
  return typeof sub === 'string' ? sub : undefined;
}
