/**
 * Token revocation: by token id (`jti`), or every token of a user issued before a time. Kept on
 * this node in memory; entries of a jti expire with the token (or after a day when its expiry is
 * unknown). Checked at every token verification; live connections are closed by the caller.
 */
import type { Identity } from './auth.js';

/** How long a revoked jti is remembered when the token's expiry is unknown. */
export const DEFAULT_REVOCATION_TTL_MS = 86_400_000;
const MAX_ENTRIES = 1_000_000;

/** Revoked token ids and per-user issued-before times. */
export class Revocations {
  readonly #jti = new Map<string, number>();
  readonly #before = new Map<string, number>();

  /** Revoke a token id until `expiresAt` (ms since the epoch; default one day from now). */
  revokeJti(jti: string, expiresAt = Date.now() + DEFAULT_REVOCATION_TTL_MS): void {
    if (this.#jti.size >= MAX_ENTRIES) this.#sweep();
    this.#jti.set(jti, expiresAt);
  }

  /** Revoke every token of `user` issued before `time` (ms since the epoch). Never moves backwards. */
  revokeBefore(user: string, time: number): void {
    this.#before.set(user, Math.max(time, this.#before.get(user) ?? 0));
  }

  /**
   * Whether an identity's token is revoked. An identity without `iat` counts as issued at 0, so a
   * user-wide revocation also ends sessions whose tokens carry no issue time.
   */
  isRevoked(identity: Identity): boolean {
    if (identity.jti !== undefined) {
      const until = this.#jti.get(identity.jti);
      if (until !== undefined) {
        if (until > Date.now()) return true;
        this.#jti.delete(identity.jti);
      }
    }
    const before = this.#before.get(identity.user);
    return before !== undefined && (identity.iat ?? 0) * 1000 < before;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [k, until] of this.#jti) if (until <= now) this.#jti.delete(k);
  }
}
