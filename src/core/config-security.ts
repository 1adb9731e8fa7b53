/**
 * Configuration of exposure: TLS files, whom Herald trusts (loopback, proxies), which Host
 * headers and browser origins it answers, and the rules that refuse unsafe combinations
 * (development mode with token keys or on a public host). The threat model behind each option
 * is in docs/security.md.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

/** Default interval at which the TLS certificate and key files are checked for changes, ms. */
export const DEFAULT_TLS_WATCH_INTERVAL_MS = 5_000;

/** Default open connections per client address. */
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 1_000;
/** Default new connections per second per client address (burst twice this). */
export const DEFAULT_CONNECTIONS_PER_IP_PER_SECOND = 50;
/** Default open sessions per user on one node. */
export const DEFAULT_MAX_CONNECTIONS_PER_USER = 100;

/** An IP address or an `address/prefix` CIDR block. */
export const addressOrCidr = z.string().refine((s) => {
  const [addr, bits, ...rest] = s.split('/');
  if (rest.length || !addr) return false;
  const family = isIP(addr);
  if (family === 0) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d{1,3}$/.test(bits) && n <= (family === 4 ? 32 : 128);
}, 'an IP address or CIDR block, e.g. 10.0.0.0/8');

/** A host name (no port), `*.suffix`, or `*`. */
export const hostPattern = z.string().regex(/^(\*|(\*\.)?[A-Za-z0-9_.:[\]-]{1,253})$/, 'a host name without port, "*.example.com" or "*"');

/** An origin `scheme://host[:port]` (no path), or `*`. */
export const originPattern = z.string().refine((s) => {
  if (s === '*') return true;
  try {
    const u = new URL(s);
    return u.origin === s.replace(/\/$/, '') && u.origin !== 'null';
  } catch {
    return false;
  }
}, 'an origin like https://app.example.com (scheme, host, optional port; no path), or "*"');

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);

/** Whether `host` only listens on the loopback interface. */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || host.startsWith('127.');
}

/** The options the exposure rules read (a structural slice of HeraldConfig). */
export interface ExposureConfig {
  readonly host: string;
  readonly apiKey?: string;
  readonly dev: boolean;
  readonly devAllowUnsafe: boolean;
  readonly trustLoopback?: boolean;
  readonly tls: { readonly certFile: string; readonly keyFile: string };
  readonly auth: { readonly hmacSecret?: string; readonly publicKeys: readonly string[]; readonly jwksFile?: string };
}

/** Whether loopback clients are trusted like API-key holders (`trustLoopback`, default: `dev`). */
export function trustsLoopback(cfg: ExposureConfig): boolean {
  return cfg.trustLoopback ?? cfg.dev;
}

/** Problems of a schema-valid config that only show in combination (reported with the rest). */
export function securityProblems(cfg: ExposureConfig): string[] {
  const problems: string[] = [];
  if (!isLoopbackHost(cfg.host) && !cfg.apiKey) {
    problems.push(`apiKey: required when listening beyond loopback (host ${cfg.host}); set HERALD_API_KEY`);
  }
  if ((cfg.tls.certFile === '') !== (cfg.tls.keyFile === '')) {
    problems.push('tls: give both tls.certFile and tls.keyFile (or neither)');
  }
  if (cfg.dev && !cfg.devAllowUnsafe) {
    const tokens = cfg.auth.hmacSecret !== undefined || cfg.auth.publicKeys.length > 0 || cfg.auth.jwksFile !== undefined;
    if (tokens) problems.push('dev: development mode accepts bare user names next to your token keys (anyone can be anyone); remove dev or set devAllowUnsafe');
    if (!isLoopbackHost(cfg.host))
      problems.push(`dev: development mode on a non-loopback host (${cfg.host}) lets anyone claim any identity; remove dev or set devAllowUnsafe`);
  }
  return problems;
}
