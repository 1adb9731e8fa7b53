/**
 * Wire codes of the native protocol, mirrored from the server (src/protocol/codes.ts).
 * Leaf module: imports nothing.
 *
 * Disconnect codes: 3000–3499 mean "reconnect" (after backoff, through the dispatcher when one
 * is configured), 3500–3999 mean "stop" (fix the token or the client first), 4000–4999 belong to
 * applications.
 */

/** Native protocol version this SDK speaks. */
export const PROTOCOL_VERSION = 1;

/** Error codes carried in command replies. */
export const ErrorCode = {
  INTERNAL: 100,
  UNAUTHORIZED: 101,
  UNKNOWN_CHANNEL: 102,
  PERMISSION_DENIED: 103,
  METHOD_NOT_FOUND: 104,
  ALREADY_SUBSCRIBED: 105,
  LIMIT_EXCEEDED: 106,
  BAD_REQUEST: 107,
  NOT_AVAILABLE: 108,
  TOKEN_EXPIRED: 109,
  NOT_SUBSCRIBED: 110,
  TOO_MANY_REQUESTS: 111,
  MESSAGE_TOO_LARGE: 112,
  INVALID_CHANNEL: 113,
  INVALID_POSITION: 114,
  NOT_FOUND: 115,
  CONFLICT: 116,
  UNAVAILABLE: 117,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Disconnect (WebSocket close) codes sent by the server. */
export const DisconnectCode = {
  SHUTDOWN: 3001,
  SERVER_ERROR: 3002,
  NO_PONG: 3003,
  SLOW_CONSUMER: 3004,
  RECONNECT: 3005,
  CONNECT_TIMEOUT: 3006,
  TOO_MANY_CONNECTIONS: 3007,
  INVALID_TOKEN: 3500,
  BAD_REQUEST: 3501,
  MESSAGE_TOO_LARGE: 3502,
  FORBIDDEN: 3503,
  UNSUPPORTED_PROTOCOL: 3504,
  TOO_MANY_REQUESTS: 3505,
} as const;
export type DisconnectCode = (typeof DisconnectCode)[keyof typeof DisconnectCode];

/**
 * Codes the SDK itself reports in `disconnected` events (never sent by a server). They follow
 * the same ranges: 3000–3499 reconnect.
 */
export const ClientCode = {
  /** The transport closed without a code (network loss, 1006, stream ended). */
  TRANSPORT_CLOSED: 3400,
  /** No transport could be opened. */
  CONNECT_FAILED: 3401,
  /** The application called `disconnect()`. */
  CLIENT_DISCONNECT: 3402,
} as const;

/** Whether a client that got disconnect `code` should reconnect. */
export function shouldReconnect(code: number): boolean {
  return code < 3500 || code >= 5000;
}
