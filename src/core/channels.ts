/**
 * Channel names and per-channel policy. A channel name is 1..maxChannelNameLength bytes of
 * `A-Z a-z 0-9 _ - . : @ / = + ! ~ #`; its namespace is the part before the first `:`
 * (`news:sport` → `news`). Policy comes from the namespace rule, or the defaults.
 */
import { InvalidArgumentError } from './errors.js';
import type { ChannelPolicy, HeraldConfig } from './config.js';

const CHANNEL_RE = /^[A-Za-z0-9_\-.:@/=+!~#]+$/;

/** The namespace of a channel, or undefined when it has none. */
export function namespaceOf(channel: string): string | undefined {
  const i = channel.indexOf(':');
  return i > 0 ? channel.slice(0, i) : undefined;
}

/** Whether `channel` is a valid channel name within `maxLength` bytes. */
export function isValidChannel(channel: unknown, maxLength: number): channel is string {
  return typeof channel === 'string' && channel.length > 0 && channel.length <= maxLength && CHANNEL_RE.test(channel);
}

/** Throw HERALD_ERR_INVALID_CHANNEL unless `channel` is valid. */
export function assertChannel(channel: unknown, maxLength: number): asserts channel is string {
  if (!isValidChannel(channel, maxLength)) {
    throw new InvalidArgumentError('HERALD_ERR_INVALID_CHANNEL', `Invalid channel name: 1-${maxLength} characters of A-Z a-z 0-9 _ - . : @ / = + ! ~ #`);
  }
}

/** Resolves and caches channel policies by namespace. */
export class PolicyResolver {
  readonly #config: HeraldConfig;
  readonly #byNamespace = new Map<string, ChannelPolicy>();

  constructor(config: HeraldConfig) {
    this.#config = config;
    for (const ns of config.namespaces) {
      const { name, ...overrides } = ns;
      this.#byNamespace.set(name, Object.freeze({ ...config.channels, ...overrides }));
    }
  }

  /** Policy for a channel: its namespace's rule, or the defaults. */
  forChannel(channel: string): ChannelPolicy {
    const ns = namespaceOf(channel);
    return (ns !== undefined && this.#byNamespace.get(ns)) || this.#config.channels;
  }
}
