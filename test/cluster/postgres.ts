/**
 * PostgreSQL for the cluster suite: the shared server on 127.0.0.1:5432 (database `test`),
 * isolated by a fresh schema per run that is dropped at the end (never another schema or database).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The shared PostgreSQL of this machine. */
export const SHARED_PG_URL = process.env.HERALD_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** A schema name unique to this run and `tag`: `herald_test_<tag>_<random>`. */
export function testSchema(tag: string): string {
  return `herald_test_${tag}_${randomBytes(6).toString('hex')}`;
}

/** Run one statement on its own connection (for checks and clean-up outside the store). */
export async function pgQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: SHARED_PG_URL });
  await client.connect();
  try {
    return (await client.query<R>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

/** Drop a schema made by `testSchema` (refuses any other name). */
export async function dropSchema(schema: string): Promise<void> {
  if (!/^herald_test_[a-z0-9_]+$/.test(schema)) throw new Error(`not a test schema: ${schema}`);
  await pgQuery(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}
