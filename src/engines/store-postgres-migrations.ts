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
  {
    // One round trip per group commit: the batch's appends and acks run server-side, in order,
    // after locking its conversation rows and then its user rows (each in id order). Raises (and
    // so applies nothing) when one write cannot apply: the store then re-runs the batch on its
    // careful path, where each write fails alone.
    version: 2,
    sql: `
CREATE FUNCTION $S.herald_batch(p_convs TEXT[], p_users TEXT[], p_ops JSONB, p_now BIGINT) RETURNS JSONB LANGUAGE plpgsql AS $fn$
DECLARE
  op JSONB;
  res JSONB := '[]'::jsonb;
  v_seq BIGINT;
  v_list JSONB;
  v_head BIGINT;
  v_acked BIGINT;
  v_next BIGINT;
  r RECORD;
BEGIN
  PERFORM 1 FROM $S.im_conversations WHERE id = ANY(p_convs) ORDER BY id FOR UPDATE;
  PERFORM 1 FROM $S.im_users WHERE id = ANY(p_users) ORDER BY id FOR UPDATE;
  FOR op IN SELECT value FROM jsonb_array_elements(p_ops) LOOP
    IF op ? 'conv' THEN
      v_seq := NULL;
      UPDATE $S.im_conversations SET seq = seq + 1, last_time = p_now WHERE id = op->>'conv' RETURNING seq INTO v_seq;
      IF v_seq IS NULL THEN RAISE EXCEPTION 'unknown conversation' USING ERRCODE = 'HR001'; END IF;
      INSERT INTO $S.im_messages (id, conversation, seq, sender, client_id, kind, payload, target, time)
        VALUES (op->>'id', op->>'conv', v_seq, op->>'sender', op->>'cid', op->>'kind', op->>'payload', op->>'target', p_now);
      v_list := '[]'::jsonb;
      FOR r IN UPDATE $S.im_users SET inbox_head = inbox_head + 1 WHERE id IN (SELECT jsonb_array_elements_text(op->'rcpt')) RETURNING id, inbox_head LOOP
        INSERT INTO $S.im_inbox (user_id, seq, message) VALUES (r.id, r.inbox_head, op->>'id');
        v_list := v_list || jsonb_build_array(jsonb_build_array(r.id, r.inbox_head));
      END LOOP;
      IF jsonb_array_length(v_list) <> jsonb_array_length(op->'rcpt') THEN RAISE EXCEPTION 'unknown user' USING ERRCODE = 'HR002'; END IF;
      res := res || jsonb_build_array(jsonb_build_object('seq', v_seq, 'inbox', v_list));
    ELSE
      SELECT inbox_head, inbox_acked INTO v_head, v_acked FROM $S.im_users WHERE id = op->>'user';
      IF NOT FOUND THEN
        res := res || jsonb_build_array(jsonb_build_object('acked', 0, 'delivered', '[]'::jsonb));
        CONTINUE;
      END IF;
      v_next := GREATEST(v_acked, LEAST((op->>'seq')::BIGINT, v_head));
      v_list := '[]'::jsonb;
      IF v_next <> v_acked THEN
        FOR r IN SELECT m.conversation AS conv, max(m.seq) AS seq FROM $S.im_inbox i JOIN $S.im_messages m ON m.id = i.message
                 WHERE i.user_id = op->>'user' AND i.seq > v_acked AND i.seq <= v_next GROUP BY m.conversation ORDER BY m.conversation LOOP
          UPDATE $S.im_members SET delivered_seq = GREATEST(delivered_seq, r.seq) WHERE conversation = r.conv AND user_id = op->>'user';
          v_list := v_list || jsonb_build_array(jsonb_build_array(r.conv, r.seq));
        END LOOP;
        UPDATE $S.im_users SET inbox_acked = v_next WHERE id = op->>'user';
      END IF;
      res := res || jsonb_build_array(jsonb_build_object('acked', v_next, 'delivered', v_list));
    END IF;
  END LOOP;
  RETURN res;
END
$fn$;
`,
  },
  {
    // Group invitations (consent before joining), and the seq each member joined at (history
    // before it stays hidden). Members from before read the whole timeline, as they did.
    version: 3,
    sql: `
ALTER TABLE $S.im_members ADD COLUMN joined_seq BIGINT NOT NULL DEFAULT 0;
CREATE TABLE $S.im_invites (
  conversation TEXT NOT NULL, user_id TEXT NOT NULL, inviter TEXT NOT NULL, created_at BIGINT NOT NULL,
  PRIMARY KEY (conversation, user_id)
);
CREATE INDEX im_invites_user ON $S.im_invites (user_id, created_at);
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
