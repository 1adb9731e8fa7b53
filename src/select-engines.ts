/**
 * Engine selection, the part of the composition root (index.ts `createServer`) that turns
 * configuration into concrete engines. It is the only module that names every engine; the server
 * (server.ts) receives the finished set and knows only core's interfaces.
 */
import { join } from 'node:path';
import type { HeraldConfig } from './core/config.js';
import type { Logger } from './core/logger.js';
import { HttpBackendTransport } from './engines/backend-http.js';
import { MemoryBroker } from './engines/broker-memory.js';
import { RedisBroker } from './engines/broker-redis.js';
import { MemoryPresence } from './engines/presence-memory.js';
import { RedisPresence } from './engines/presence-redis.js';
import { RedisNodeRegistry } from './engines/registry-redis.js';
import { MemoryResumptions } from './engines/resumptions-memory.js';
import { RedisResumptions } from './engines/resumptions-redis.js';
import { MemorySessions } from './engines/sessions-memory.js';
import { RedisSessions } from './engines/sessions-redis.js';
import { FileRevocationStore } from './engines/revocations-file.js';
import { PostgresImStore } from './engines/store-postgres.js';
import { SqliteImStore } from './engines/store-sqlite.js';
import type { Engines } from './server.js';

/** Engines given by the caller instead of chosen from the configuration (tests, embedding). */
export type EngineOverrides = { readonly [K in keyof Engines]?: Engines[K] };

/**
 * Choose every engine: an override when given, else from the configuration. `redis.url`
 * selects Redis for the broker, presence, session and node registries and the resumption store (ioredis loads when each
 * first connects); `database.url` the PostgreSQL IM store, else SQLite at `im.storePath` or
 * `<dataDir>/herald.db`; `backend.url` or `backend.webhookUrl` the HTTP backend client; without
 * Redis, token revocations persist in `<dataDir>/revocations.json`. Without
 * them everything is in-process memory plus the SQLite file. Constructing an engine opens no
 * connection.
 */
export function selectEngines(config: HeraldConfig, overrides: EngineOverrides = {}, logger?: Logger): Engines {
  const { redis, database, im, backend } = config;
  const r = redis.url ? { url: redis.url, prefix: redis.prefix } : undefined;
  return {
    broker: overrides.broker ?? (r ? new RedisBroker({ ...r, logger }) : new MemoryBroker()),
    sessions: overrides.sessions ?? (r ? new RedisSessions({ ...r, ttlMs: config.cluster.sessionTtlMs, logger }) : new MemorySessions()),
    resumptions: overrides.resumptions ?? (r ? new RedisResumptions({ ...r, logger }) : new MemoryResumptions()),
    presence: overrides.presence ?? (r ? new RedisPresence({ ...r, ttlMs: config.cluster.sessionTtlMs }) : new MemoryPresence()),
    registry: overrides.registry ?? (r ? new RedisNodeRegistry(r) : undefined),
    imStore:
      overrides.imStore ??
      (database.url
        ? new PostgresImStore({ url: database.url, schema: database.schema, poolSize: database.poolSize })
        : new SqliteImStore({ path: im.storePath || join(config.dataDir, 'herald.db'), synchronous: im.storeSync })),
    backendTransport:
      overrides.backendTransport ?? (backend.url || backend.webhookUrl ? new HttpBackendTransport({ connections: backend.maxConnections }) : undefined),
    revocationStore: overrides.revocationStore ?? (r ? undefined : new FileRevocationStore(join(config.dataDir, 'revocations.json'))),
  };
}
