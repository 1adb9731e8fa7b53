/**
 * The per-client shares of a node's connections, kept by the client-session service: open
 * connections per IP address, new connections per second per IP address (a token bucket), and
 * open sessions per user, each separate from the node-wide cap. Addresses in
 * `limits.perIpExempt` (loopback by default: local tools, benchmarks) are not counted per IP.
 * Memory is bounded by the connections open: an address's entry goes once it has no connection
 * and a full bucket (idle buckets are swept).
 */
import { BlockList, isIP } from 'node:net';

/** The limits, from `limits.*`. */
export interface AdmissionLimitsConfig {
  /** Open connections one IP address may hold (0 = no cap). */
  readonly maxConnectionsPerIp: number;
  /** New connections one IP address may open per second, burst twice that (0 = no limit). */
  readonly connectionsPerIpPerSecond: number;
  /** Open sessions one user may hold (0 = no cap). */
  readonly maxConnectionsPerUser: number;
  /** Addresses or CIDRs not limited per IP. */
  readonly perIpExempt: readonly string[];
}

/** Addresses whose exemption is remembered before the memo starts over. */
const EXEMPT_MEMO_MAX = 4096;

/** Why a client was refused. */
export type LimitRefusal = 'ip-connections' | 'ip-rate';

interface IpEntry {
  open: number;
  /** Tokens left in the rate bucket. */
  tokens: number;
  /** When the bucket was last refilled, ms. */
  at: number;
}

/** Per-IP and per-user accounting of one node. */
export class AdmissionLimits {
  readonly #cfg: AdmissionLimitsConfig;
  readonly #exempt = new BlockList();
  /**
   * Answers of `#exempted` by address (a `BlockList` check allocates and costs ~1 µs; it ran
   * once per admission). Bounded: cleared once it holds `EXEMPT_MEMO_MAX` addresses.
   */
  readonly #exemptMemo = new Map<string, boolean>();
  readonly #ips = new Map<string, IpEntry>();
  readonly #users = new Map<string, number>();
  #lastSweep = Date.now();

  constructor(cfg: AdmissionLimitsConfig) {
    this.#cfg = cfg;
    for (const p of cfg.perIpExempt) {
      const [addr, bits] = p.split('/') as [string, string | undefined];
      const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.#exempt.addAddress(addr, type);
      else this.#exempt.addSubnet(addr, Number(bits), type);
    }
  }

  #exempted(ip: string): boolean {
    let exempt = this.#exemptMemo.get(ip);
    if (exempt === undefined) {
      const family = isIP(ip);
      exempt = family === 0 || this.#exempt.check(ip, family === 6 ? 'ipv6' : 'ipv4');
      if (this.#exemptMemo.size >= EXEMPT_MEMO_MAX) this.#exemptMemo.clear();
      this.#exemptMemo.set(ip, exempt);
    }
    return exempt;
  }

  /**
   * Take a connection slot for `ip`: undefined when admitted (the caller must `releaseIp` it
   * later), else why not. A refused attempt still spends a rate token, so hammering does not pay.
   */
  admitIp(ip: string, now = Date.now()): LimitRefusal | undefined {
    if (this.#exempted(ip)) return undefined;
    const { maxConnectionsPerIp: cap, connectionsPerIpPerSecond: rate } = this.#cfg;
    let e = this.#ips.get(ip);
    if (!e) {
      e = { open: 0, tokens: rate * 2, at: now };
      this.#ips.set(ip, e);
    }
    if (rate > 0) {
      e.tokens = Math.min(rate * 2, e.tokens + ((now - e.at) / 1000) * rate);
      e.at = now;
      if (e.tokens < 1) return 'ip-rate';
      e.tokens -= 1;
    }
    if (cap > 0 && e.open >= cap) return 'ip-connections';
    e.open++;
    this.#sweep(now);
    return undefined;
  }

  /** Give back the slot of a connection `admitIp` admitted. */
  releaseIp(ip: string): void {
    const e = this.#ips.get(ip);
    if (!e) return;
    e.open--;
    if (e.open <= 0 && this.#cfg.connectionsPerIpPerSecond === 0) this.#ips.delete(ip);
  }

  /** Whether `user` may open another session (below `maxConnectionsPerUser`). */
  userHasRoom(user: string): boolean {
    const cap = this.#cfg.maxConnectionsPerUser;
    return cap === 0 || (this.#users.get(user) ?? 0) < cap;
  }

  /** Count a session of `user` (undo with `removeUser`). */
  addUser(user: string): void {
    this.#users.set(user, (this.#users.get(user) ?? 0) + 1);
  }

  /** A session of `user` ended. */
  removeUser(user: string): void {
    const n = (this.#users.get(user) ?? 1) - 1;
    if (n <= 0) this.#users.delete(user);
    else this.#users.set(user, n);
  }

  /** Addresses tracked (for tests and stats). */
  get trackedIps(): number {
    return this.#ips.size;
  }

  /** Drop entries of addresses with no connection whose bucket has refilled (at most once a second). */
  #sweep(now: number): void {
    if (now - this.#lastSweep < 1000) return;
    this.#lastSweep = now;
    const rate = this.#cfg.connectionsPerIpPerSecond;
    for (const [ip, e] of this.#ips) {
      if (e.open <= 0 && e.tokens + ((now - e.at) / 1000) * rate >= rate * 2) this.#ips.delete(ip);
    }
  }
}
