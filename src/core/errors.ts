/**
 * The error registry. Every error Herald reports has a stable string code (`HERALD_ERR_*`),
 * an HTTP status for the HTTP API and a wire code for the native protocol. A published code is
 * never reused for another meaning.
 */
import { ErrorCode } from '../protocol/codes.js';
import type { Logger } from './logger.js';

interface ErrorSpec {
  readonly status: number;
  readonly wire: ErrorCode;
  readonly message: string;
  /** True when retrying the same request later may succeed. */
  readonly temporary: boolean;
}

/** All error codes with their default message, HTTP status and wire code. */
export const ERRORS = {
  HERALD_ERR_INTERNAL: { status: 500, wire: ErrorCode.INTERNAL, message: 'Internal server error', temporary: true },
  HERALD_ERR_BAD_REQUEST: { status: 400, wire: ErrorCode.BAD_REQUEST, message: 'Bad request', temporary: false },
  HERALD_ERR_MALFORMED_JSON: { status: 400, wire: ErrorCode.BAD_REQUEST, message: 'Malformed JSON', temporary: false },
  HERALD_ERR_JSON_TOO_DEEP: { status: 400, wire: ErrorCode.BAD_REQUEST, message: 'JSON nests too deep', temporary: false },
  HERALD_ERR_UNKNOWN_COMMAND: { status: 400, wire: ErrorCode.METHOD_NOT_FOUND, message: 'Unknown command', temporary: false },
  HERALD_ERR_UNAUTHORIZED: { status: 401, wire: ErrorCode.UNAUTHORIZED, message: 'Unauthorized', temporary: false },
  HERALD_ERR_TOKEN_EXPIRED: { status: 401, wire: ErrorCode.TOKEN_EXPIRED, message: 'Token expired', temporary: false },
  HERALD_ERR_FORBIDDEN: { status: 403, wire: ErrorCode.PERMISSION_DENIED, message: 'Permission denied', temporary: false },
  HERALD_ERR_NOT_FOUND: { status: 404, wire: ErrorCode.NOT_FOUND, message: 'Not found', temporary: false },
  HERALD_ERR_METHOD_NOT_ALLOWED: { status: 405, wire: ErrorCode.METHOD_NOT_FOUND, message: 'Method not allowed', temporary: false },
  HERALD_ERR_CONFLICT: { status: 409, wire: ErrorCode.CONFLICT, message: 'Conflict', temporary: false },
  HERALD_ERR_PAYLOAD_TOO_LARGE: { status: 413, wire: ErrorCode.MESSAGE_TOO_LARGE, message: 'Payload too large', temporary: false },
  HERALD_ERR_UNSUPPORTED_MEDIA_TYPE: { status: 415, wire: ErrorCode.BAD_REQUEST, message: 'Unsupported media type', temporary: false },
  HERALD_ERR_TOO_MANY_REQUESTS: { status: 429, wire: ErrorCode.TOO_MANY_REQUESTS, message: 'Too many requests', temporary: true },
  HERALD_ERR_INVALID_CHANNEL: { status: 400, wire: ErrorCode.INVALID_CHANNEL, message: 'Invalid channel name', temporary: false },
  HERALD_ERR_INVALID_POSITION: { status: 400, wire: ErrorCode.INVALID_POSITION, message: 'Invalid stream position', temporary: false },
  HERALD_ERR_ALREADY_SUBSCRIBED: { status: 409, wire: ErrorCode.ALREADY_SUBSCRIBED, message: 'Already subscribed', temporary: false },
  HERALD_ERR_NOT_SUBSCRIBED: { status: 400, wire: ErrorCode.NOT_SUBSCRIBED, message: 'Not subscribed', temporary: false },
  HERALD_ERR_LIMIT_EXCEEDED: { status: 429, wire: ErrorCode.LIMIT_EXCEEDED, message: 'Limit exceeded', temporary: false },
  HERALD_ERR_NOT_CONNECTED: { status: 400, wire: ErrorCode.UNAUTHORIZED, message: 'Connect first', temporary: false },
  HERALD_ERR_UNAVAILABLE: { status: 503, wire: ErrorCode.UNAVAILABLE, message: 'Service unavailable', temporary: true },
  HERALD_ERR_CHANNEL_NOT_FOUND: { status: 404, wire: ErrorCode.UNKNOWN_CHANNEL, message: 'Channel not found', temporary: false },
  HERALD_ERR_IM_UNKNOWN_USER: { status: 404, wire: ErrorCode.NOT_FOUND, message: 'Unknown user', temporary: false },
  HERALD_ERR_IM_UNKNOWN_CONVERSATION: { status: 404, wire: ErrorCode.NOT_FOUND, message: 'Unknown conversation or group', temporary: false },
  HERALD_ERR_IM_UNKNOWN_MESSAGE: { status: 404, wire: ErrorCode.NOT_FOUND, message: 'Unknown message', temporary: false },
  HERALD_ERR_IM_NOT_MEMBER: { status: 403, wire: ErrorCode.PERMISSION_DENIED, message: 'Not a member of this conversation', temporary: false },
  HERALD_ERR_IM_NOT_ALLOWED: { status: 403, wire: ErrorCode.PERMISSION_DENIED, message: 'Not allowed on this message or group', temporary: false },
  HERALD_ERR_IM_RECALL_EXPIRED: { status: 409, wire: ErrorCode.CONFLICT, message: 'Recall window has passed', temporary: false },
  HERALD_ERR_IM_GROUP_FULL: { status: 409, wire: ErrorCode.LIMIT_EXCEEDED, message: 'Group is full', temporary: false },
  HERALD_ERR_IM_TOO_MANY_GROUPS: { status: 409, wire: ErrorCode.LIMIT_EXCEEDED, message: 'Member of too many groups', temporary: false },
  HERALD_ERR_IM_TOO_MANY_CONTACTS: { status: 409, wire: ErrorCode.LIMIT_EXCEEDED, message: 'Too many contacts', temporary: false },
  HERALD_ERR_IM_NO_INVITE: { status: 404, wire: ErrorCode.NOT_FOUND, message: 'No pending invitation to this group', temporary: false },
  HERALD_ERR_BACKEND_UNAVAILABLE: { status: 503, wire: ErrorCode.UNAVAILABLE, message: 'Backend unavailable', temporary: true },
  HERALD_ERR_BACKEND_TIMEOUT: { status: 504, wire: ErrorCode.UNAVAILABLE, message: 'Backend timed out', temporary: true },
  HERALD_ERR_BACKEND_DENIED: { status: 403, wire: ErrorCode.PERMISSION_DENIED, message: 'Denied by the backend', temporary: false },
  HERALD_ERR_TOKEN_REVOKED: { status: 401, wire: ErrorCode.UNAUTHORIZED, message: 'Token revoked', temporary: false },
  HERALD_ERR_RPC_ERROR: { status: 502, wire: ErrorCode.BAD_REQUEST, message: 'The backend answered the RPC with an error', temporary: false },
} as const satisfies Record<string, ErrorSpec>;

/** A stable error code string. */
export type HeraldErrorCode = keyof typeof ERRORS;

/** Base class of every error Herald raises on purpose. */
export class HeraldError extends Error {
  override name = 'HeraldError';
  readonly code: HeraldErrorCode;
  readonly status: number;
  readonly wire: ErrorCode;
  readonly temporary: boolean;
  constructor(code: HeraldErrorCode, message?: string, options?: { cause?: unknown }) {
    const spec: ErrorSpec = ERRORS[code];
    super(message ?? spec.message, options);
    this.code = code;
    this.status = spec.status;
    this.wire = spec.wire;
    this.temporary = spec.temporary;
  }
}

/** A request or option was invalid. */
export class InvalidArgumentError extends HeraldError {
  override name = 'InvalidArgumentError';
}

/** The caller lacks the credentials or permission. */
export class UnauthorizedError extends HeraldError {
  override name = 'UnauthorizedError';
}

/** An operation did not finish in time. */
export class TimeoutError extends HeraldError {
  override name = 'TimeoutError';
}

/** Wrap anything thrown into a HeraldError; unknown errors become HERALD_ERR_INTERNAL (no internals leak). */
export function toHeraldError(err: unknown): HeraldError {
  if (err instanceof HeraldError) return err;
  return new HeraldError('HERALD_ERR_INTERNAL', undefined, { cause: err });
}

/** Last time an engine outage was logged, ms (see logFailure). */
let lastUnavailableLog = 0;

/**
 * Log a failure answered to a client: the cause of an internal error (always, at error level,
 * since the client is not told it), an engine being unavailable with its cause when known (a
 * database or Redis error behind a 503 / wire 117; at warn level, at most once per second so an
 * outage does not flood the log), and any other refusal at debug level (code and message, no
 * payload).
 * `context` names what failed, e.g. `{ command, transport }`.
 */
export function logFailure(logger: Logger | undefined, e: HeraldError, context: object = {}): void {
  if (!logger) return;
  if (e.code === 'HERALD_ERR_INTERNAL') {
    logger.error({ ...context, err: String((e.cause as Error | undefined)?.stack ?? e.cause) }, 'internal error');
  } else if (e.code === 'HERALD_ERR_UNAVAILABLE' && Date.now() - lastUnavailableLog >= 1_000) {
    lastUnavailableLog = Date.now();
    const cause = e.cause === undefined ? e.message : String((e.cause as Error | undefined)?.message ?? e.cause);
    logger.warn({ ...context, err: cause, reason: e.message }, 'engine unavailable');
  } else {
    logger.debug({ ...context, code: e.code, err: e.message }, 'refused');
  }
}
