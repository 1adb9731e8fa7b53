/**
 * The PostgreSQL IM store: the engine suite every store passes, plus what only a shared database
 * has: migrations run once however many nodes open at once, appends from several nodes (one
 * pool each) stay gap-free, and data survives closing and reopening. One schema per store.
 */
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { after, describe, test } from 'node:test';
import { PG_SCHEMA_VERSION } from '../../src/engines/store-postgres-migrations.js';
import { PostgresImStore } from '../../src/engines/store-postgres.js';
import { imStoreSuite } from '../unit/im-store.suite.js';
import { dropSchema, pgQuery, SHARED_PG_URL, testSchema } from './postgres.js';
import { freePort } from './redis.js';

const schemas: string[] = [];
const newSchema = (): string => {
  const s = testSchema('store');
  schemas.push(s);
  return s;
};
after(async () => {
  for (const s of schemas) await dropSchema(s);
});

imStoreSuite('postgres', async () => new PostgresImStore({ url: SHARED_PG_URL, schema: newSchema(), poolSize: 4 }));

describe('IM store: postgres across nodes', () => {
  test('opening twice and from two nodes at once applies each migration exactly once', async () => {
    const schema = newSchema();
    const nodes = [1, 2, 3].map(() => new PostgresImStore({ url: SHARED_PG_URL, schema, poolSize: 2 }));
    await Promise.all(nodes.map((s) => s.open()));
    await nodes[0]!.open();
    const again = new PostgresImStore({ url: SHARED_PG_URL, schema, poolSize: 1 });
    await again.open();
    const rows = await pgQuery<{ version: number; applied_at: Date }>(`SELECT version, applied_at FROM "${schema}".herald_migrations ORDER BY version`);
    assert.deepEqual(
      rows.map((r) => r.version),
      Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1),
    );
    assert.ok(rows.every((r) => r.applied_at instanceof Date));
    for (const s of [...nodes, again]) await s.close();
  });

  test('concurrent appends to one conversation from two nodes get gap-free seqs, and inboxes too', async () => {
    const schema = newSchema();
    const a = new PostgresImStore({ url: SHARED_PG_URL, schema, poolSize: 3 });
    const b = new PostgresImStore({ url: SHARED_PG_URL, schema, poolSize: 3 });
    await Promise.all([a.open(), b.open()]);
    for (const u of ['alice', 'bob', 'carol']) await a.upsertUser(u);
    await a.ensureDirect('d:alice:bob', 'alice', 'bob');
    await b.createConversation({ id: 'g:1', kind: 'group', members: ['alice', 'bob', 'carol'].map((user) => ({ user, role: 'member' as const })) });
    // Both conversations write into bob's inbox, so the nodes contend for the same user row too.
    const send = (s: PostgresImStore, conversation: string, i: number, recipients: string[]) =>
      s.append({ conversation, sender: 'alice', clientId: `${conversation}-${i}`, kind: 'message', payload: `${i}`, recipients });
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        i % 3 === 0 ? send(i % 2 ? a : b, 'g:1', i, ['carol', 'bob', 'alice']) : send(i % 2 ? a : b, 'd:alice:bob', i, ['alice', 'bob']),
      ),
    );
    const seqsOf = (conv: string) =>
      results
        .filter((r) => r.message.conversation === conv)
        .map((r) => r.message.seq)
        .sort((x, y) => x - y);
    assert.deepEqual(
      seqsOf('g:1'),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.deepEqual(
      seqsOf('d:alice:bob'),
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
    const bobSeqs = results.flatMap((r) => r.inbox.filter((e) => e.user === 'bob').map((e) => e.seq)).sort((x, y) => x - y);
    assert.deepEqual(
      bobSeqs,
      Array.from({ length: 60 }, (_, i) => i + 1),
    );
    const inbox = await b.inbox('bob', 0, 100);
    assert.deepEqual(
      inbox.map((e) => e.seq),
      bobSeqs,
    );
    // Within one conversation, inbox order follows conversation order (both are commit order).
    const direct = inbox.filter((e) => e.message.conversation === 'd:alice:bob').map((e) => e.message.seq);
    assert.deepEqual(
      direct,
      [...direct].sort((x, y) => x - y),
    );
    assert.deepEqual(await a.cursor('carol'), { head: 20, acked: 0 });
    await Promise.all([a.close(), b.close()]);
  });

  test('a retry on another node returns the original entry, even when both race', async () => {
    const schema = newSchema();
    const a = new PostgresImStore({ url: SHARED_PG_URL, schema, poolSize: 2 });
    const b = new PostgresImStore({ url: SHARED_PG_URL, schema, poolSize: 2 });
    await Promise.all([a.open(), b.open()]);
    for (const u of ['alice', 'bob']) await a.upsertUser(u);
    await a.ensureDirect('d:alice:bob', 'alice', 'bob');
    const input = { conversation: 'd:alice:bob', sender: 'alice', clientId: 'same', kind: 'message' as const, payload: '"x"', recipients: ['alice', 'bob'] };
    const [r1, r2] = await Promise.all([a.append(input), b.append(input)]);
    assert.equal(r1.message.id, r2.message.id);
    assert.deepEqual([r1.duplicate, r2.duplicate].sort(), [false, true]);
    assert.deepEqual(await b.cursor('bob'), { head: 1, acked: 0 });
    await Promise.all([a.close(), b.close()]);
  });

  test('everything committed survives closing and reopening the store', async () => {
    const schema = newSchema();
    const first = new PostgresImStore({ url: SHARED_PG_URL, schema });
    await first.open();
    for (const u of ['alice', 'bob']) await first.upsertUser(u, u);
    await first.ensureDirect('d:alice:bob', 'alice', 'bob');
    const sent = await first.append({
      conversation: 'd:alice:bob',
      sender: 'alice',
      clientId: 'k',
      kind: 'message',
      payload: '"kept"',
      recipients: ['alice', 'bob'],
    });
    await first.ack('bob', 1);
    await first.addContact('alice', 'bob');
    // Appends still queued when close() is called are committed before the pool ends.
    const queued = first.append({ conversation: 'd:alice:bob', sender: 'bob', kind: 'message', payload: '"last"', recipients: ['alice', 'bob'] });
    await first.close();
    assert.equal((await queued).message.seq, 2);
    await assert.rejects(first.message(sent.message.id), { code: 'HERALD_ERR_UNAVAILABLE' });

    const second = new PostgresImStore({ url: SHARED_PG_URL, schema });
    await second.open();
    assert.deepEqual(await second.message(sent.message.id), sent.message);
    assert.deepEqual(await second.cursor('bob'), { head: 2, acked: 1 });
    assert.deepEqual(
      (await second.history('d:alice:bob', { limit: 10 })).map((m) => m.payload),
      ['"last"', '"kept"'],
    );
    assert.equal((await second.member('d:alice:bob', 'bob'))?.deliveredSeq, 1);
    assert.deepEqual(await second.contacts('alice'), ['bob']);
    const retry = await second.append({
      conversation: 'd:alice:bob',
      sender: 'alice',
      clientId: 'k',
      kind: 'message',
      payload: '"kept"',
      recipients: ['alice', 'bob'],
    });
    assert.equal(retry.duplicate, true);
    await second.close();
  });

  test('rejects invalid options at construction', () => {
    assert.throws(() => new PostgresImStore({ url: SHARED_PG_URL, poolSize: 0 }), { code: 'HERALD_ERR_BAD_REQUEST' });
  });

  test('an open that failed while the database was unreachable succeeds once it is back', async () => {
    // The "database" is a TCP relay to the shared server: closed first, then listening.
    const target = new URL(SHARED_PG_URL);
    const port = await freePort();
    const relay = createServer((socket) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      socket.pipe(upstream).pipe(socket);
      socket.on('error', () => upstream.destroy());
      upstream.on('error', () => socket.destroy());
    });
    const url = new URL(SHARED_PG_URL);
    url.port = String(port);
    const store = new PostgresImStore({ url: url.href, schema: newSchema(), poolSize: 1 });
    await assert.rejects(store.open(), { code: 'HERALD_ERR_UNAVAILABLE' });
    await assert.rejects(store.cursor('alice'), { code: 'HERALD_ERR_UNAVAILABLE' });
    await new Promise<void>((resolve) => relay.listen(port, '127.0.0.1', resolve));
    await store.open();
    await store.upsertUser('alice');
    assert.deepEqual(await store.cursor('alice'), { head: 0, acked: 0 });
    await store.close();
    await new Promise((resolve) => relay.close(resolve));
  });
});
