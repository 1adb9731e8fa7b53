/**
 * Herald's public surface and composition root: `createServer(config)` resolves the config,
 * chooses every engine (select-engines.ts) and builds the node. The CLI and the tests use only
 * this module.
 */
import { type ConfigInput, type HeraldConfig, isResolvedConfig, resolveConfig } from './core/config.js';
import type { Logger } from './core/logger.js';
import { type EngineOverrides, selectEngines } from './select-engines.js';
import { HeraldServer } from './server.js';

export { type Engines, HeraldServer, type HttpHandler, type ServerOptions, type UpgradeHandler } from './server.js';
export { type EngineOverrides, selectEngines } from './select-engines.js';
export { ConfigError, envName, flagName, type HeraldConfig, isResolvedConfig, OPTIONS, resolveConfig } from './core/config.js';
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
export { serveClusterMetrics } from './api/metrics.js';
export { serveHostReports } from './api/node-report.js';
export type { NodeEntry, NodesAnswer, NodeTotals } from './api/nodes-api.js';
export type { NodeInfo, NodeLoad, NodeRegistry, NodeStats } from './core/nodes.js';
export { keyEquals, NetPolicy, type RequestFacts } from './core/net-policy.js';
export type { Broker } from './core/broker.js';
export type { ControlAction, ControlMessage } from './core/control-message.js';
export { SqliteImStore, type SqliteStoreOptions } from './engines/store-sqlite.js';
export { PostgresImStore, type PostgresStoreOptions } from './engines/store-postgres.js';
export { MemoryPresence } from './engines/presence-memory.js';
export { ImService, inboxChannel, directConversationId, INBOX_NAMESPACE } from './core/im/service.js';
export type * from './core/im/store.js';
export type * from './core/im/presence.js';
export type { Logger } from './core/logger.js';

/** Options of `createServer`: a config (resolved, or raw input validated here) and engines to use instead of the configured ones. */
export type CreateServerOptions = EngineOverrides & {
  readonly config?: HeraldConfig | ConfigInput;
  readonly logger?: Logger;
  /** Collect Node process metrics in /metrics (default true). */
  readonly processMetrics?: boolean;
};

/**
 * Create (not yet listening) a Herald server. `config` may be raw input: it is validated with
 * the defaults filled in (throws ConfigError listing every problem). Engines given in `options`
 * are used as they are; every other one is chosen from the config (`selectEngines`: `redis.url`
 * selects the Redis engines, `database.url` the PostgreSQL IM store, else the embedded ones).
 */
export function createServer(options: CreateServerOptions = {}): HeraldServer {
  const { config: input, logger, processMetrics, ...overrides } = options;
  const config = isResolvedConfig(input) ? input : resolveConfig(input ?? {});
  return new HeraldServer({ config, engines: selectEngines(config, overrides, logger), logger, processMetrics });
}
