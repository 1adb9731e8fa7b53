/**
 * Schema migrations of the PostgreSQL IM store: numbered, applied in order, each once, recorded
 * in `<schema>.herald_migrations` (version, applied_at). A published migration is never edited;
 * a change to the tables is a new migration appended to MIGRATIONS.
 */
import type { Pool } from 'pg';

/** One migration: applied once, in order, in the schema's migration transaction. */
interface Migration {
  readonly version: number;
  /** SQL with `$S` standing for the quoted schema name. */
  readonly sql: string;
}

/** The migrations, in order. */
const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE $S.im_users (
  id TEXT PRIMARY KEY, name TEXT, created_at BIGINT NOT NULL,
  inbox_head BIGINT NOT NULL DEFAULT 0, inbox_acked BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE $S.im_conversations (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, title TEXT, created_at BIGINT NOT NULL,
  seq BIGINT NOT NULL DEFAULT 0, member_count INTEGER NOT NULL DEFAULT 0, last_time BIGINT NOT NULL
);
CREATE TABLE $S.im_members (
  conversation TEXT NOT NULL, user_id TEXT NOT NULL, role TEXT NOT NULL, joined_at BIGINT NOT NULL,
  read_seq BIGINT NOT NULL DEFAULT 0, delivered_seq BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (conversation, user_id)
);
CREATE INDEX im_members_user ON $S.im_members (user_id, conversation);
CREATE TABLE $S.im_messages (
  id TEXT PRIMARY KEY, conversation TEXT NOT NULL, seq BIGINT NOT NULL, sender TEXT NOT NULL,
  client_id TEXT, kind TEXT NOT NULL, payload TEXT NOT NULL, target TEXT, time BIGINT NOT NULL,
  edited_at BIGINT, recalled BOOLEAN NOT NULL DEFAULT false,
  UNIQUE (conversation, seq)
);
CREATE UNIQUE INDEX im_messages_client ON $S.im_messages (sender, client_id) WHERE client_id IS NOT NULL;
CREATE TABLE $S.im_inbox (
  user_id TEXT NOT NULL, seq BIGINT NOT NULL, message TEXT NOT NULL, PRIMARY KEY (user_id, seq)
);
CREATE TABLE $S.im_contacts (
  user_id TEXT NOT NULL, contact TEXT NOT NULL, PRIMARY KEY (user_id, contact)
);
CREATE INDEX im_contacts_rev ON $S.im_contacts (contact, user_id);
`,
  },
];

/** The newest migration version: what `open()` brings a schema to. */
export const PG_SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** A quoted SQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * Create `schema` when missing and apply the migrations it lacks, all in one transaction under
 * a transaction-scoped advisory lock per schema: nodes opening at once apply each migration
 * exactly once (the later ones wait, then find the work done), and a failure applies nothing.
 */
export async function migrate(pool: Pool, schema: string): Promise<void> {
  const s = quoteIdent(schema);
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // One lock per schema: a second node opening now waits here, then finds the work done.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('herald_migrations'), hashtext($1))", [schema]);
    // Only when missing: CREATE SCHEMA needs CREATE on the database even with IF NOT EXISTS,
    // and a deployment may instead give Herald an existing schema it owns.
    const found = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (!found.rowCount) await client.query(`CREATE SCHEMA ${s}`);
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.herald_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`);
    const { rows } = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.herald_migrations`);
    const current = rows[0]?.v ?? 0;
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      await client.query(m.sql.replaceAll('$S', s));
      await client.query(`INSERT INTO ${s}.herald_migrations (version) VALUES ($1)`, [m.version]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
