/**
 * Connection authentication: JWT verification (HS256 from a secret; RS256/ES256 from PEM public
 * keys, a JWKS file or a JWKS URL) and the development-mode bare-name identity. `sub` is the
 * user id. A JWKS URL that cannot be fetched makes verification fail with HERALD_ERR_UNAVAILABLE
 * (temporary: the client retries), never with "invalid token".
 */
import { readFileSync } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, errors as joseErrors, importSPKI, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { HeraldConfig } from './config.js';
import { HeraldError, UnauthorizedError } from './errors.js';
import { USER_ID_RE } from './user-id.js';

/** Who a connection is. */
export interface Identity {
  /** User id (`sub`). */
  readonly user: string;
  /** Display name (`name` claim), if given. */
  readonly name?: string;
  /** Channels the token grants (`channels` claim), if given; patterns ending in `*` match prefixes. */
  readonly channels?: readonly string[];
  /** Token expiry, seconds since the Unix epoch. */
  readonly exp?: number;
  /** Token id. */
  readonly jti?: string;
  /** Token issue time, seconds since the Unix epoch. */
  readonly iat?: number;
  /** All claims. */
  readonly claims: JWTPayload;
}

/** Longest wait for the JWKS URL, ms. */
const JWKS_TIMEOUT_MS = 5_000;
/** Shortest time between two JWKS fetches (an unknown key id fetches again), ms. */
const JWKS_COOLDOWN_MS = 30_000;
/** How long fetched keys are used before the next fetch, ms. */
const JWKS_CACHE_MS = 600_000;

type KeyLike = Awaited<ReturnType<typeof importSPKI>>;

/** Verifies connection tokens per the `auth` config. */
export class Authenticator {
  readonly #config: HeraldConfig;
  readonly #secret: Uint8Array | undefined;
  #keys: Promise<Array<{ key: KeyLike; alg: string }>> | undefined;
  readonly #jwks: JWTVerifyGetKey | undefined;
  readonly #remoteJwks: JWTVerifyGetKey | undefined;
  /** Revocation check run on every verified token (set by the backend integration). */
  revoked: ((identity: Identity) => boolean) | undefined;

  constructor(config: HeraldConfig) {
    this.#config = config;
    this.#secret = config.auth.hmacSecret ? new TextEncoder().encode(config.auth.hmacSecret) : undefined;
    this.#jwks = config.auth.jwksFile ? createLocalJWKSet(JSON.parse(readFileSync(config.auth.jwksFile, 'utf8'))) : undefined;
    this.#remoteJwks = config.auth.jwksUrl
      ? createRemoteJWKSet(new URL(config.auth.jwksUrl), { timeoutDuration: JWKS_TIMEOUT_MS, cooldownDuration: JWKS_COOLDOWN_MS, cacheMaxAge: JWKS_CACHE_MS })
      : undefined;
  }

  /** Whether any token verification is configured. */
  get enabled(): boolean {
    return this.#secret !== undefined || this.#config.auth.publicKeys.length > 0 || this.#jwks !== undefined || this.#remoteJwks !== undefined;
  }

  /** Whether bare user names are accepted (development mode). */
  get devMode(): boolean {
    return this.#config.dev;
  }

  /**
   * Verify a JWT. Rejects with UnauthorizedError (HERALD_ERR_TOKEN_EXPIRED or
   * HERALD_ERR_UNAUTHORIZED) when it is expired, malformed, wrongly signed, lacks `sub` or has a
   * `jti` that is not a string.
   */
  async verify(token: string): Promise<Identity> {
    if (!this.enabled) throw new UnauthorizedError('HERALD_ERR_UNAUTHORIZED', 'Token authentication is not configured');
    const opts = { audience: this.#config.auth.audience, issuer: this.#config.auth.issuer };
    let payload: JWTPayload | undefined;
    let lastErr: unknown;
    for (const verifier of await this.#verifiers()) {
      try {
        payload = (await verifier(token, opts)).payload;
        break;
      } catch (err) {
        lastErr = err;
        if (err instanceof joseErrors.JWTExpired) break;
      }
    }
    if (!payload) {
      if (
        lastErr instanceof joseErrors.JWKSTimeout ||
        lastErr instanceof TypeError ||
        (lastErr instanceof joseErrors.JOSEError && lastErr.code === 'ERR_JOSE_GENERIC')
      ) {
        throw new HeraldError('HERALD_ERR_UNAVAILABLE', 'Token keys unavailable (JWKS URL)', { cause: lastErr });
      }
      if (lastErr instanceof joseErrors.JWTExpired) throw new UnauthorizedError('HERALD_ERR_TOKEN_EXPIRED', 'Token expired', { cause: lastErr });
      throw new UnauthorizedError('HERALD_ERR_UNAUTHORIZED', 'Invalid token', { cause: lastErr });
    }
    if (typeof payload.sub !== 'string' || !USER_ID_RE.test(payload.sub)) {
      throw new UnauthorizedError('HERALD_ERR_UNAUTHORIZED', 'Token has no valid sub claim');
    }
    // RFC 7519 §4.1.7: a string. Any other type could never match a revocation by jti (those are strings).
    if (payload.jti !== undefined && typeof payload.jti !== 'string') {
      throw new UnauthorizedError('HERALD_ERR_UNAUTHORIZED', 'Token jti claim must be a string');
    }
    const channels = Array.isArray(payload.channels) ? payload.channels.filter((c): c is string => typeof c === 'string') : undefined;
    const identity: Identity = {
      user: payload.sub,
      name: typeof payload.name === 'string' ? payload.name : undefined,
      channels,
      exp: payload.exp,
      jti: payload.jti,
      iat: payload.iat,
      claims: payload,
    };
    if (this.revoked?.(identity)) throw new UnauthorizedError('HERALD_ERR_TOKEN_REVOKED', 'Token revoked');
    return identity;
  }

  /** Development-mode identity from a bare user name; throws unless dev mode is on and the name is valid. */
  devIdentity(name: string): Identity {
    if (!this.#config.dev) throw new UnauthorizedError('HERALD_ERR_UNAUTHORIZED', 'Bare user names are only accepted in development mode');
    if (!USER_ID_RE.test(name)) throw new UnauthorizedError('HERALD_ERR_UNAUTHORIZED', 'Invalid user name');
    return { user: name, name, claims: { sub: name } };
  }

  async #verifiers(): Promise<Array<(t: string, o: object) => Promise<{ payload: JWTPayload }>>> {
    const out: Array<(t: string, o: object) => Promise<{ payload: JWTPayload }>> = [];
    if (this.#secret) {
      const secret = this.#secret;
      out.push((t, o) => jwtVerify(t, secret, { ...o, algorithms: ['HS256'] }));
    }
    // One shared import: concurrent first verifications must all wait for the same keys.
    if (this.#config.auth.publicKeys.length) this.#keys ??= this.#importKeys();
    for (const { key, alg } of (await this.#keys) ?? []) out.push((t, o) => jwtVerify(t, key, { ...o, algorithms: [alg] }));
    for (const jwks of [this.#jwks, this.#remoteJwks]) {
      if (jwks) out.push((t, o) => jwtVerify(t, jwks, { ...o, algorithms: ['RS256', 'ES256', 'HS256'] }));
    }
    return out;
  }

  async #importKeys(): Promise<Array<{ key: KeyLike; alg: string }>> {
    const keys: Array<{ key: KeyLike; alg: string }> = [];
    for (const pem of this.#config.auth.publicKeys) {
      for (const alg of ['RS256', 'ES256']) {
        try {
          keys.push({ key: await importSPKI(pem, alg), alg });
        } catch {
          // not a key of this algorithm family; try the next
        }
      }
    }
    return keys;
  }
}

/** Whether an identity's `channels` claim (if any) grants `channel`. No claim = no restriction from the token. */
export function tokenAllowsChannel(identity: Identity | undefined, channel: string): boolean {
  const list = identity?.channels;
  if (!list) return true;
  return list.some((p) => (p.endsWith('*') ? channel.startsWith(p.slice(0, -1)) : p === channel));
}
