/**
 * What a person starting Herald needs to know, once it listens: version, URL, engines, where the
 * data lives, development mode and the pages. Logged as fields of the "herald listening" line
 * (JSON logs) and printed as a short block (pretty logs).
 */
import { resolve } from 'node:path';
import type { HeraldConfig } from '../index.js';
import { dataDirFiles } from './start-checks.js';

/** The startup summary as log fields. */
export interface StartupSummary {
  readonly version: string;
  readonly url: string;
  readonly workers: number;
  readonly engines: { readonly broker: string; readonly imStore: string; readonly presence: string };
  /** The data directory and what it holds (`none` when every store is external). */
  readonly data: string;
  readonly dev: boolean;
  readonly chatUrl?: string;
  readonly adminUrl?: string;
}

/** A database URL without its password. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}

/** Build the summary for a node listening at `url`. */
export function startupSummary(config: HeraldConfig, url: string, version: string): StartupSummary {
  const redis = config.redis.url ? `redis ${redact(config.redis.url)} (prefix ${config.redis.prefix})` : undefined;
  const sqlite = resolve(config.im.storePath || `${config.dataDir}/herald.db`);
  const chat = config.web.chat ?? config.dev;
  return {
    version,
    url,
    workers: config.workers,
    engines: {
      broker: redis ?? 'memory (this process)',
      imStore: config.database.url ? `postgres ${redact(config.database.url)} (schema ${config.database.schema})` : `sqlite ${sqlite}`,
      presence: redis ? 'redis' : 'memory (this process)',
    },
    data: dataDirFiles(config).length ? `${resolve(config.dataDir)} (${dataDirFiles(config).join(', ')})` : 'none (PostgreSQL and Redis)',
    dev: config.dev,
    chatUrl: chat ? `${url}/` : undefined,
    adminUrl: config.web.admin ? `${url}/admin` : undefined,
  };
}

/** The summary as lines for a terminal. */
export function summaryLines(s: StartupSummary): string {
  const rows: Array<[string, string | undefined]> = [
    ['Listening', s.workers > 1 ? `${s.url} (${s.workers} workers)` : s.url],
    ['Broker', s.engines.broker],
    ['IM store', s.engines.imStore],
    ['Presence', s.engines.presence],
    ['Data', s.data],
    ['Mode', s.dev ? 'DEVELOPMENT: bare user names are identities; never in production' : 'production'],
    ['Chat', s.chatUrl],
    ['Admin', s.adminUrl],
    ['Readiness', `${s.url}/ready`],
    ['Metrics', `${s.url}/metrics`],
  ];
  const body = rows.filter((r): r is [string, string] => r[1] !== undefined).map(([k, v]) => `  ${k.padEnd(10)} ${v}`);
  return [``, `  Herald ${s.version}`, ...body, ``].join('\n') + '\n';
}
