/**
 * Network trust decisions, free of any transport: who the client is (the peer address, or the
 * `X-Forwarded-For` hop a configured proxy vouches for), whether it gets loopback trust, which
 * `Host` headers are ours (DNS-rebinding guard), whether a browser request is cross-site
 * (CSRF guard) and which browser origins may use the client transports. Fronts and the API
 * ask these questions with facts read from their requests; see docs/security.md.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import { hostname } from 'node:os';
import type { HeraldConfig } from './config.js';
import { trustsLoopback } from './config-security.js';

/** What a request says about where it comes from, as read from the socket and its headers. */
export interface RequestFacts {
  /** Address of the TCP peer (as the socket reports it). */
  readonly peer: string;
  /** The `X-Forwarded-For` header, if any. */
  readonly forwardedFor?: string;
  /** Whether any forwarding header (`X-Forwarded-For`, `Forwarded`, `X-Real-IP`) is present. */
  readonly forwarded: boolean;
  /** The `Host` header, if any. */
  readonly host?: string;
  /** The `Origin` header, if any. */
  readonly origin?: string;
  /** The `Sec-Fetch-Site` header, if any. */
  readonly fetchSite?: string;
}

/**
 * Whether `given` equals `key`, in time independent of where they differ and of their lengths
 * (both are hashed first, then compared with `timingSafeEqual`). False when either is missing.
 */
export function keyEquals(given: string | undefined, key: string | undefined): boolean {
  if (given === undefined || key === undefined) return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(key).digest();
  return timingSafeEqual(a, b);
}

/** An address without the IPv4-mapped IPv6 prefix. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** Whether an address is on the loopback interface (127.0.0.0/8 or ::1). */
export function isLoopbackAddress(address: string): boolean {
  const a = plainAddress(address);
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

/** The host name of a `Host` header or URL authority, lower-case, without port or trailing dot. */
export function hostName(authority: string): string {
  let h = authority.trim().toLowerCase();
  if (h.startsWith('[')) h = h.slice(1, h.indexOf(']') === -1 ? undefined : h.indexOf(']'));
  else if (h.indexOf(':') === h.lastIndexOf(':')) h = h.split(':')[0]!;
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

/** The `host[:port]` of an origin, lower-case; undefined when the origin is opaque or malformed. */
function originAuthority(origin: string): string | undefined {
  try {
    const u = new URL(origin);
    return u.host === '' ? undefined : u.host.toLowerCase();
  } catch {
    return undefined;
  }
}

/** The port-less, default-port-less authority of a Host header, for comparison with an origin's. */
function normalAuthority(host: string): string {
  return host
    .trim()
    .toLowerCase()
    .replace(/:(80|443)$/, '');
}

/** Listen hosts that mean "every interface". */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '']);

/** The network policy of one node, built once from the configuration. */
export class NetPolicy {
  readonly #trustLoopback: boolean;
  readonly #proxies = new BlockList();
  readonly #hasProxies: boolean;
  readonly #hosts = new Set<string>();
  readonly #hostSuffixes: string[] = [];
  readonly #anyHost: boolean;
  readonly #origins: Set<string>;
  readonly #anyOrigin: boolean;

  constructor(cfg: HeraldConfig) {
    this.#trustLoopback = trustsLoopback(cfg);
    for (const p of cfg.trustedProxies) {
      const [addr, bits] = p.split('/') as [string, string | undefined];
      const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.#proxies.addAddress(addr, type);
      else this.#proxies.addSubnet(addr, Number(bits), type);
    }
    this.#hasProxies = cfg.trustedProxies.length > 0;
    this.#anyHost = cfg.allowedHosts.includes('*');
    const hosts = ['localhost', ...cfg.allowedHosts];
    if (!WILDCARD_HOSTS.has(cfg.host)) hosts.push(cfg.host);
    else hosts.push(hostname());
    if (cfg.cluster.advertiseUrl) hosts.push(new URL(cfg.cluster.advertiseUrl).host);
    for (const h of hosts) {
      if (h.startsWith('*.')) this.#hostSuffixes.push(h.slice(1).toLowerCase());
      else if (h !== '*') this.#hosts.add(hostName(h));
    }
    this.#anyOrigin = cfg.allowedOrigins.includes('*');
    this.#origins = new Set(cfg.allowedOrigins.filter((o) => o !== '*').map((o) => new URL(o).origin));
  }

  #isProxy(address: string): boolean {
    if (!this.#hasProxies) return false;
    const a = plainAddress(address);
    const family = isIP(a);
    return family !== 0 && this.#proxies.check(a, family === 6 ? 'ipv6' : 'ipv4');
  }

  /**
   * The client's address: the peer, or, when the peer is a trusted proxy, the right-most
   * `X-Forwarded-For` hop that is not itself a trusted proxy (hops left of it can be forged by
   * the client). A malformed hop ends the walk at the proxy that reported it.
   */
  clientAddress(peer: string, forwardedFor: string | undefined): string {
    let client = plainAddress(peer);
    if (!forwardedFor || !this.#isProxy(client)) return client;
    const hops = forwardedFor.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = plainAddress(hops[i]!.trim());
      if (isIP(hop) === 0) return client;
      client = hop;
      if (!this.#isProxy(hop)) return hop;
    }
    return client;
  }

  /**
   * Whether the request gets loopback trust: `trustLoopback` is on, the client address is
   * loopback, and the request was not relayed by an untrusted proxy (a forwarding header from a
   * peer outside `trustedProxies` means a same-host proxy is relaying someone else).
   */
  loopbackTrusted(facts: RequestFacts): boolean {
    if (!this.#trustLoopback) return false;
    if (facts.forwarded && !this.#isProxy(facts.peer)) return false;
    return isLoopbackAddress(this.clientAddress(facts.peer, facts.forwardedFor));
  }

  /**
   * Whether a `Host` header names this node: an IP literal (a rebinding attack needs a name),
   * localhost, the listen host, cluster.advertiseUrl's host, an `allowedHosts` entry (and on a
   * wildcard listen host this machine's hostname). A request without Host (HTTP/1.0) passes.
   */
  hostAllowed(host: string | undefined): boolean {
    if (host === undefined || this.#anyHost) return true;
    const name = hostName(host);
    if (isIP(name) !== 0 || this.#hosts.has(name)) return true;
    return this.#hostSuffixes.some((s) => name.endsWith(s));
  }

  /**
   * Why a request to an endpoint with ambient authority (the API, /admin, /metrics) must be
   * refused as cross-site or rebound, or undefined when it may proceed: an unknown Host, a
   * `Sec-Fetch-Site` of cross-site or same-site, or an `Origin` other than the request's own.
   */
  crossSiteReason(facts: RequestFacts): string | undefined {
    if (!this.hostAllowed(facts.host)) return 'Host header not allowed (see allowedHosts)';
    if (facts.fetchSite === 'cross-site' || facts.fetchSite === 'same-site') return 'Cross-site requests are refused';
    if (facts.origin !== undefined) {
      const from = originAuthority(facts.origin);
      if (from === undefined || facts.host === undefined || normalAuthority(from) !== normalAuthority(facts.host)) return 'Cross-origin requests are refused';
    }
    return undefined;
  }

  /**
   * Whether a browser origin may use the client transports (WebSocket upgrades, CORS answers):
   * no Origin (not a browser), an `allowedOrigins` entry or `*`, or the request's own origin on
   * an allowed Host.
   */
  originAllowed(origin: string | undefined, host: string | undefined): boolean {
    if (origin === undefined || this.#anyOrigin) return true;
    if (this.#origins.has(origin.toLowerCase())) return true;
    const from = originAuthority(origin);
    return from !== undefined && host !== undefined && normalAuthority(from) === normalAuthority(host) && this.hostAllowed(host);
  }

  /**
   * Whether a browser origin may get credentialed answers (cookies): listed explicitly in
   * `allowedOrigins` (a `*` entry does not count), or the request's own origin on an allowed Host.
   */
  originCredentialed(origin: string, host: string | undefined): boolean {
    if (this.#origins.has(origin.toLowerCase())) return true;
    const from = originAuthority(origin);
    return from !== undefined && host !== undefined && normalAuthority(from) === normalAuthority(host) && this.hostAllowed(host);
  }
}
