import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Db, SqliteGroupCommit } from '../../src/engines/store-sqlite-commit.js';
import { SqliteImStore } from '../../src/engines/store-sqlite.js';

const Database = createRequire(import.meta.url)('better-sqlite3') as new (path: string) => Db;
const dir = mkdtempSync(join(tmpdir(), 'herald-group-commit-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a write answered at commit settles before the synced writes of its group, and is committed', async () => {
  const path = join(dir, 'order.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE t (v TEXT)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const commits = new SqliteGroupCommit(db, insert, `${path}-wal`);
  const order: string[] = [];
  // Queued first, answered last: it waits for the WAL fsync on the thread pool.
  const synced = commits.write((s) => s.run('synced')).then(() => order.push('synced'));
  const unsynced = commits.write((s) => s.run('unsynced'), false).then(() => order.push('unsynced'));
  await Promise.all([synced, unsynced]);
  assert.deepEqual(order, ['unsynced', 'synced']);
  assert.deepEqual(db.prepare('SELECT v FROM t ORDER BY rowid').all(), [{ v: 'synced' }, { v: 'unsynced' }]);
  await commits.close();
  db.close();
});

test('a write answered at commit that fails is rejected alone', async () => {
  const path = join(dir, 'fail.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE t (v TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
  const commits = new SqliteGroupCommit(db, insert, `${path}-wal`);
  const bad = commits.write((s) => s.run(null), false);
  const good = commits.write((s) => s.run('kept'));
  await assert.rejects(bad);
  await good;
  assert.deepEqual(db.prepare('SELECT v FROM t').all(), [{ v: 'kept' }]);
  await commits.close();
  db.close();
});

test('a user registered without waiting for the disk is known at once and after a reopen', async () => {
  const path = join(dir, 'users.db');
  const store = new SqliteImStore({ path });
  await store.open();
  await store.upsertUser('alice', 'Alice', { durable: false });
  assert.deepEqual(
    (await store.users(['alice'])).map((u) => [u.id, u.name]),
    [['alice', 'Alice']],
  );
  await store.close();
  const again = new SqliteImStore({ path });
  await again.open();
  assert.deepEqual(
    (await again.users(['alice'])).map((u) => u.id),
    ['alice'],
  );
  await again.close();
});
