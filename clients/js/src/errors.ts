/** Errors the SDK rejects with. */
import { ErrorCode } from './codes.js';

/** An error reply of the server, or a client-side failure (timeout, closed). */
export class HeraldClientError extends Error {
  /** Wire error code (ErrorCode) or 0 for client-side failures. */
  readonly code: number;
  /** Stable server error name (`HERALD_ERR_*`), or a client name (`TIMEOUT`, `CLOSED`, `TRANSPORT`). */
  readonly errorName: string;
  /** Whether retrying the same command later may succeed. */
  readonly temporary: boolean;

  constructor(code: number, errorName: string, message: string, temporary: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'HeraldClientError';
    this.code = code;
    this.errorName = errorName;
    this.temporary = temporary;
  }

  /** Build from the wire form `{code,name,message,temporary}`. */
  static fromWire(e: { code?: number; name?: string; message?: string; temporary?: boolean }): HeraldClientError {
    return new HeraldClientError(e.code ?? ErrorCode.INTERNAL, e.name ?? 'HERALD_ERR_INTERNAL', e.message ?? 'error', e.temporary ?? false);
  }
}

/** A command got no reply in time. Temporary. */
export const timeoutError = (what: string): HeraldClientError => new HeraldClientError(0, 'TIMEOUT', `${what} timed out`, true);
/** The connection closed before the reply. Temporary. */
export const closedError = (what: string): HeraldClientError => new HeraldClientError(0, 'CLOSED', `connection closed before ${what} completed`, true);
/** The network failed (fetch error). Temporary. */
export const transportError = (message: string, cause?: unknown): HeraldClientError => new HeraldClientError(0, 'TRANSPORT', message, true, { cause });

/** Whether an error means the credentials are wrong or expired (refresh the token). */
export function isAuthError(err: unknown): boolean {
  return err instanceof HeraldClientError && (err.code === ErrorCode.UNAUTHORIZED || err.code === ErrorCode.TOKEN_EXPIRED);
}
