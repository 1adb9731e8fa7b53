/**
 * Herald's public surface and composition root: `createServer(config)` builds a node with the
 * embedded engines (or the ones passed in). The CLI and the tests use only this module.
 */
import { type ConfigInput, type HeraldConfig, resolveConfig } from './core/config.js';
import { RedisBroker } from './engines/broker-redis.js';
import { RedisNodeRegistry } from './engines/registry-redis.js';
import { RedisPresence } from './engines/presence-redis.js';
import { RedisSessions } from './engines/sessions-redis.js';
import { HeraldServer, type ServerOptions } from './server.js';

export { HeraldServer, type HttpHandler, type ServerOptions, type UpgradeHandler } from './server.js';
export { ConfigError, envName, flagName, type HeraldConfig, OPTIONS, resolveConfig } from './core/config.js';
export { HeraldError, ERRORS, type HeraldErrorCode } from './core/errors.js';
export { DisconnectCode, ErrorCode, PROTOCOL_VERSION, shouldReconnect } from './protocol/codes.js';
export { MemoryBroker } from './engines/broker-memory.js';
export { RedisBroker, type RedisBrokerOptions } from './engines/broker-redis.js';
export { RedisNodeRegistry } from './engines/registry-redis.js';
export { RedisPresence, type RedisPresenceOptions } from './engines/presence-redis.js';
export { MemorySessions } from './engines/sessions-memory.js';
export { RedisSessions, type RedisSessionsOptions } from './engines/sessions-redis.js';
export type { SessionEntry, SessionRegistry } from './core/sessions.js';
export { createDispatchServer, Dispatcher, listenDispatch, type Assignment, type DispatchStrategy } from './api/dispatcher.js';
export type { NodeInfo, NodeRegistry } from './core/nodes.js';
export type { Broker } from './core/broker.js';
export type { ControlAction, ControlMessage } from './core/control-message.js';
export { SqliteImStore, type SqliteStoreOptions } from './engines/store-sqlite.js';
export { PostgresImStore, type PostgresStoreOptions } from './engines/store-postgres.js';
export { MemoryPresence } from './engines/presence-memory.js';
export { ImService, inboxChannel, directConversationId, INBOX_NAMESPACE } from './core/im/service.js';
export type * from './core/im/store.js';
export type * from './core/im/presence.js';
export type { Logger } from './core/logger.js';

/** Options of `createServer`: a resolved config, or raw config input validated here. */
export type CreateServerOptions = Omit<ServerOptions, 'config'> & { readonly config?: HeraldConfig | ConfigInput };

/**
 * Create (not yet listening) a Herald server. Engines come from `options`, else from config
 * (`redis.url` selects the Redis broker, `database.url` the PostgreSQL IM store), else the embedded defaults. `config` may be a raw object; it is validated
 * with the defaults filled in (throws ConfigError listing every problem).
 */
export function createServer(options: CreateServerOptions = {}): HeraldServer {
  const config = isResolved(options.config) ? options.config : resolveConfig(options.config ?? {});
  // With redis.url, Redis carries fan-out and history (ioredis itself loads when the broker starts).
  const redis = config.redis.url ? { url: config.redis.url, prefix: config.redis.prefix } : undefined;
  const broker = options.broker ?? (redis ? new RedisBroker({ ...redis, logger: options.logger }) : undefined);
  const registry = options.registry ?? (redis ? new RedisNodeRegistry(redis) : undefined);
  const presence = options.presence ?? (redis ? new RedisPresence(redis) : undefined);
  const sessions = options.sessions ?? (redis ? new RedisSessions({ ...redis, ttlMs: config.cluster.sessionTtlMs, logger: options.logger }) : undefined);
  return new HeraldServer({ ...options, config, broker, registry, presence, sessions });
}

function isResolved(c: unknown): c is HeraldConfig {
  return typeof c === 'object' && c !== null && Object.isFrozen(c) && 'limits' in c && 'timing' in c;
}
