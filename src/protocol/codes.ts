/**
 * Wire codes of the native protocol. Leaf module: imports nothing.
 *
 * Error codes (in `error.code` of a reply) are 100–999. Disconnect codes are WebSocket close
 * codes (and the `code` of a `disconnect` push on HTTP transports):
 *  - 3000–3499: the client should reconnect (after backoff, through the dispatcher if it has one);
 *  - 3500–3999: the client must not reconnect without changing something (token, input);
 *  - 4000–4999: reserved for applications.
 * A published code is never reused for another meaning.
 */

/** Native protocol version spoken by this server. */
export const PROTOCOL_VERSION = 1;

/** Error codes carried in command replies (`{"id":1,"error":{"code":…}}`). */
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

/** Disconnect (close) codes. See the module comment for the ranges. */
export const DisconnectCode = {
  /** Server is shutting down or restarting; reconnect. */
  SHUTDOWN: 3001,
  /** Internal server error; reconnect. */
  SERVER_ERROR: 3002,
  /** Missed heartbeats; reconnect. */
  NO_PONG: 3003,
  /** Outbound buffer over its limit (slow consumer); reconnect and resume. */
  SLOW_CONSUMER: 3004,
  /** Server asked the client to move (draining); reconnect through the dispatcher. */
  RECONNECT: 3005,
  /** Connect was not sent in time; reconnect. */
  CONNECT_TIMEOUT: 3006,
  /** Server has too many connections; reconnect later. */
  TOO_MANY_CONNECTIONS: 3007,
  /** Malformed frame or command; do not reconnect without fixing the client. */
  BAD_REQUEST: 3501,
  /** Token invalid, expired beyond refresh or missing where required. */
  INVALID_TOKEN: 3500,
  /** Frame larger than the configured limit. */
  MESSAGE_TOO_LARGE: 3502,
  /** Client kicked or banned by the backend/admin. */
  FORBIDDEN: 3503,
  /** Protocol version not supported. */
  UNSUPPORTED_PROTOCOL: 3504,
  /** Command flood beyond the configured rate. */
  TOO_MANY_REQUESTS: 3505,
} as const;
export type DisconnectCode = (typeof DisconnectCode)[keyof typeof DisconnectCode];

/** Whether a client receiving `code` should reconnect. */
export function shouldReconnect(code: number): boolean {
  return code < 3500 || code >= 5000;
}
