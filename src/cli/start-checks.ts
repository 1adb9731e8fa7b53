/**
 * Checks `herald serve` makes before it builds the server, and the one-line account of a start
 * failure: a data directory that cannot be used is reported as such (exit 2) instead of as the
 * first file operation that failed on it, and an error's causes are named (the IM store's
 * "IM store write failed" says why: ECONNREFUSED, authentication failed, …).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { HeraldConfig } from '../index.js';

/**
 * What this configuration keeps under `dataDir`: the SQLite IM store unless `database.url` or
 * `im.storePath` puts it elsewhere, and the token revocations of a node without Redis.
 */
export function dataDirFiles(config: HeraldConfig): string[] {
  const files: string[] = [];
  if (!config.database.url && !config.im.storePath) files.push('herald.db');
  if (!config.redis.url) files.push('revocations.json');
  return files;
}

/**
 * Make the data directory if it is missing and check a file can be written in it. Resolves
 * with the problem as one line, or undefined when the directory is usable or not used.
 */
export function checkDataDir(config: HeraldConfig): string | undefined {
  const files = dataDirFiles(config);
  if (files.length === 0) return undefined;
  const dir = resolve(config.dataDir);
  const probe = join(dir, `.herald-write-check-${process.pid}`);
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(probe, '');
    rmSync(probe);
  } catch (err) {
    return `the data directory ${dir} (dataDir, for ${files.join(' and ')}) cannot be used: ${errorChain(err)}`;
  }
  return undefined;
}

/**
 * An error's message followed by its causes' (and an AggregateError's parts'), de-duplicated:
 * `IM store write failed: connect ECONNREFUSED 127.0.0.1:5432`. At most `depth` levels.
 */
export function errorChain(err: unknown, depth = 4): string {
  const parts: string[] = [];
  const visit = (e: unknown, level: number): void => {
    if (level > depth || e === undefined || e === null) return;
    if (!(e instanceof Error)) {
      parts.push(String(e));
      return;
    }
    if (e.message) parts.push(e.message);
    if (e instanceof AggregateError) for (const inner of e.errors.slice(0, 2)) visit(inner, level + 1);
    visit(e.cause, level + 1);
  };
  visit(err, 0);
  const unique = parts.filter((p, i) => parts.indexOf(p) === i);
  return unique.length ? unique.join(': ') : 'unknown error';
}
