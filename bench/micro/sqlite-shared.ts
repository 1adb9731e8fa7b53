/**
 * Micro benchmark: what another process's commits cost a login's SQLite work when workers share
 * the IM store's file. One connection does a login's store work (the user's registration in its
 * own BEGIN IMMEDIATE … COMMIT, then the reads a login makes: the user, its presence peers, its
 * inbox cursor, its conversations, its contacts) on a file holding 20,000 users; with `shared`,
 * a second connection to the same file (as another worker) commits one registration before the
 * write and one before the reads, which in WAL mode makes the first connection drop its page
 * cache and read the pages again. CPU is counted around the first connection's work only.
 *
 *   node --import tsx bench/micro/sqlite-shared.ts [alone|shared] [mmap bytes, 0 = off] [logins=20000]
 *
 * Run pinned to one core (`taskset -c 0`) under the bench lock. Never part of `npm test`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Db } from '../../src/engines/store-sqlite-commit.js';
import { SqliteImStore } from '../../src/engines/store-sqlite.js';

const [mode = 'alone', mmap = '0', count = '20000'] = process.argv.slice(2);
const logins = Number(count);
const Database = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => Db;
const dir = mkdtempSync(join(tmpdir(), 'herald-sqlite-shared-'));
const path = join(dir, 'im.db');

// The schema and 20,000 users, written through the store itself.
const init = new SqliteImStore({ path, synchronous: 'normal' });
await init.open();
await Promise.all(Array.from({ length: 20_000 }, (_, i) => init.upsertUser(`pre${i}`, undefined, { durable: false })));
await init.close();

function connect(): Db {
  const db = new Database(path);
  db.pragma('busy_timeout = 5000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  if (mmap !== '0') db.pragma(`mmap_size = ${mmap}`);
  return db;
}
const db = connect();
const other = connect();
const UPSERT = 'INSERT INTO im_users (id, name, created_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET name = COALESCE(excluded.name, name)';
const s = {
  begin: db.prepare('BEGIN IMMEDIATE'),
  commit: db.prepare('COMMIT'),
  upsert: db.prepare(UPSERT),
  user: db.prepare('SELECT id, name, created_at FROM im_users WHERE id = ?'),
  cursor: db.prepare('SELECT inbox_head, inbox_acked FROM im_users WHERE id = ?'),
  convs: db.prepare(
    'SELECT c.id, c.kind, c.title, c.created_at, c.seq, c.member_count, m.read_seq, m.joined_seq FROM im_members m JOIN im_conversations c ON c.id = m.conversation WHERE m.user = ? ORDER BY c.last_time DESC, c.id LIMIT ?',
  ),
  contacts: db.prepare('SELECT contact FROM im_contacts WHERE user = ? ORDER BY contact'),
  peers: db.prepare(
    "SELECT a.contact AS user FROM im_contacts a JOIN im_contacts b ON b.user = a.contact AND b.contact = a.user WHERE a.user = @user AND a.contact <> @user UNION SELECT o.user AS user FROM im_members m JOIN im_conversations c ON c.id = m.conversation JOIN im_members o ON o.conversation = m.conversation WHERE m.user = @user AND c.kind = 'group' AND c.member_count <= @max AND o.user <> @user",
  ),
};
const o = { begin: other.prepare('BEGIN IMMEDIATE'), commit: other.prepare('COMMIT'), upsert: other.prepare(UPSERT) };
const otherCommit = (id: string): void => {
  o.begin.run();
  o.upsert.run(id, null, Date.now());
  o.commit.run();
};

let us = 0;
for (let i = 0; i < logins; i++) {
  if (mode === 'shared') otherCommit(`o${i}`);
  const c0 = process.cpuUsage();
  s.begin.run();
  s.upsert.run(`u${i}`, null, Date.now());
  s.commit.run();
  let c = process.cpuUsage(c0);
  us += c.user + c.system;
  if (mode === 'shared') otherCommit(`p${i}`);
  const c1 = process.cpuUsage();
  const u = `pre${(i * 7919) % 20_000}`;
  s.user.get(u);
  s.peers.all({ user: u, max: 100 });
  s.cursor.get(u);
  s.convs.all(u, 20);
  s.contacts.all(u);
  c = process.cpuUsage(c1);
  us += c.user + c.system;
}
console.log(JSON.stringify({ mode, mmap: Number(mmap), logins, cpuUsPerLogin: +(us / logins).toFixed(1) }));
db.close();
other.close();
rmSync(dir, { recursive: true, force: true });
