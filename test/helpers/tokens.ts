/** HS256 connection tokens for tests, signed with jose. */
import { SignJWT } from 'jose';

/** The HMAC secret test servers are configured with (`auth.hmacSecret`). */
export const TEST_SECRET = 'test-secret-0123456789abcdef-herald';

/** Sign a token for `sub`; `exp` is seconds since the epoch (default: in one hour). */
export function signToken(sub: string, claims: Record<string, unknown> = {}, options: { secret?: string; exp?: number } = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(options.secret ?? TEST_SECRET));
}
