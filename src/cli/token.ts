/**
 * `herald token --user alice [--channels a,b] [--name Alice] [--ttl 3600]`: print an HS256
 * connection token signed with the configured `auth.hmacSecret`, so a developer can try
 * `requireToken` namespaces and the SDK's `token` option without writing a backend first.
 */
import { SignJWT } from 'jose';
import type { HeraldConfig } from '../index.js';
import { USER_ID_RE, USER_ID_RULE } from '../core/user-id.js';

/** Default token lifetime, seconds (one day). */
const DEFAULT_TOKEN_TTL_S = 86_400;

/** Mint the token; returns the exit code (2 with a message on stderr for bad input). */
export async function runToken(config: HeraldConfig, flags: Readonly<Record<string, string | boolean>>): Promise<number> {
  const problems: string[] = [];
  const user = typeof flags.user === 'string' ? flags.user : undefined;
  if (!user) problems.push("--user: required (the token's sub claim)");
  else if (!USER_ID_RE.test(user)) problems.push(`--user: "${user}" is not a valid user id: ${USER_ID_RULE}`);
  const ttlText = typeof flags.ttl === 'string' ? flags.ttl : String(DEFAULT_TOKEN_TTL_S);
  const ttl = Number(ttlText);
  if (!Number.isSafeInteger(ttl) || ttl < 1) problems.push(`--ttl: expected a positive number of seconds, got "${ttlText}"`);
  if (!config.auth.hmacSecret)
    problems.push('auth.hmacSecret: needed to sign the token; set --auth.hmac-secret or HERALD_AUTH_HMAC_SECRET (the server must use the same)');
  if (problems.length) {
    process.stderr.write(`herald token:\n  - ${problems.join('\n  - ')}\n`);
    return 2;
  }
  const claims: Record<string, unknown> = {};
  if (typeof flags.channels === 'string')
    claims.channels = flags.channels
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean);
  if (typeof flags.name === 'string') claims.name = flags.name;
  let jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(user!)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + ttl);
  if (config.auth.issuer) jwt = jwt.setIssuer(config.auth.issuer);
  if (config.auth.audience) jwt = jwt.setAudience(config.auth.audience);
  process.stdout.write(`${await jwt.sign(new TextEncoder().encode(config.auth.hmacSecret))}\n`);
  return 0;
}
