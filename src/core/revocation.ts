/**
 * Token revocation: by token id (`jti`), or every token of a user issued before a time. Kept on
 * this node in memory; entries of a jti expire with the token (or after a day when its expiry is
 * unknown). Checked at every token verification; live connections are closed by the caller.
 * A store (`persistTo`) keeps them across restarts of a single node (a cluster replays them from
 * Redis instead, see control.ts).
 */
import type { Identity } from './auth.js';

/** How long a revoked jti is remembered when the token's expiry is unknown. */
export const DEFAULT_REVOCATION_TTL_MS = 86_400_000;
const MAX_ENTRIES = 1_000_000;

/** Revocations as saved: `[jti, expiresAt ms]` and `[user, issuedBefore ms]` pairs. */
export interface RevocationSnapshot {
  readonly jti: ReadonlyArray<readonly [string, number]>;
  readonly before: ReadonlyArray<readonly [string, number]>;
}

/** Where a single node keeps its revocations across restarts. */
export interface RevocationStore {
  /** The saved revocations (undefined when there are none yet). Throws when they cannot be read. */
  load(): RevocationSnapshot | undefined;
  /** Replace the saved revocations; durable when it returns. Throws on failure. */
  save(snapshot: RevocationSnapshot): void;
}

/** Revoked token ids and per-user issued-before times. */
export class Revocations {
  readonly #jti = new Map<string, number>();
  readonly #before = new Map<string, number>();
  #store: RevocationStore | undefined;

  /**
   * Load the revocations saved in `store` (a jti whose token has expired since is dropped) and
   * save every later change there before the revoke call returns.
   */
  persistTo(store: RevocationStore): void {
    const saved = store.load();
    const now = Date.now();
    for (const [jti, until] of saved?.jti ?? []) if (until > now) this.#jti.set(jti, Math.max(until, this.#jti.get(jti) ?? 0));
    for (const [user, time] of saved?.before ?? []) this.#before.set(user, Math.max(time, this.#before.get(user) ?? 0));
    this.#store = store;
  }

  /** The revocations in force (expired jti entries left out). */
  snapshot(): RevocationSnapshot {
    const now = Date.now();
    return { jti: [...this.#jti].filter(([, until]) => until > now), before: [...this.#before] };
  }

  /** Revoke a token id until `expiresAt` (ms since the epoch; default one day from now). */
  revokeJti(jti: string, expiresAt = Date.now() + DEFAULT_REVOCATION_TTL_MS): void {
    if (this.#jti.size >= MAX_ENTRIES) this.#sweep();
    this.#jti.set(jti, expiresAt);
    this.#store?.save(this.snapshot());
  }

  /** Revoke every token of `user` issued before `time` (ms since the epoch). Never moves backwards. */
  revokeBefore(user: string, time: number): void {
    this.#before.set(user, Math.max(time, this.#before.get(user) ?? 0));
    this.#store?.save(this.snapshot());
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
