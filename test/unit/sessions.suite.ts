/**
 * The session registry suite: the guarantees of SessionRegistry (src/core/sessions.ts), run over
 * every engine. Engines shared between instances (Redis) also run the cross-node and TTL tests.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { SessionEntry, SessionRegistry } from '../../src/core/sessions.js';

/** Creates registries for the suite. */
export interface SessionsFactory {
  /** A new registry; registries of one `space` share entries as nodes of one cluster do. */
  create(space: string, ttlMs: number): SessionRegistry;
  /** True when registries of one space share state (cross-node tests run). */
  readonly distributed: boolean;
  cleanup?(space: string): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll `list` until `want` holds; rejects after `timeoutMs`. */
async function listUntil(reg: SessionRegistry, user: string, want: (l: SessionEntry[]) => boolean, timeoutMs = 3_000): Promise<SessionEntry[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const l = await reg.list(user);
    if (want(l)) return l;
    if (Date.now() > deadline) throw new Error(`sessions of ${user} never matched: ${JSON.stringify(l)}`);
    await sleep(10);
  }
}

let spaces = 0;

/** Register the suite for one engine. */
export function sessionsSuite(name: string, factory: SessionsFactory): void {
  void describe(`session registry: ${name}`, () => {
    let space = '';
    let open: SessionRegistry[] = [];
    const make = (ttlMs = 30_000): SessionRegistry => {
      const r = factory.create(space, ttlMs);
      open.push(r);
      return r;
    };
    beforeEach(() => {
      space = `${process.pid}-${Date.now().toString(36)}-${++spaces}`;
      open = [];
    });
    afterEach(async () => {
      for (const r of open) await r.close();
      await factory.cleanup?.(space);
    });

    void test("lists a user's sessions sorted by node and session; removed ones go", async () => {
      const reg = make();
      reg.add('ann', 'n2', 's1');
      reg.add('ann', 'n1', 's9');
      reg.add('ann', 'n1', 's2');
      reg.add('bob', 'n1', 's3');
      const want = [
        { node: 'n1', session: 's2' },
        { node: 'n1', session: 's9' },
        { node: 'n2', session: 's1' },
      ];
      assert.deepEqual(await listUntil(reg, 'ann', (l) => l.length === 3), want);
      reg.remove('ann', 'n1', 's9');
      assert.deepEqual(await listUntil(reg, 'ann', (l) => l.length === 2), [want[0], want[2]]);
      assert.deepEqual(await reg.list('nobody'), []);
      assert.deepEqual(await reg.list('bob'), [{ node: 'n1', session: 's3' }]);
    });

    void test('a session added and removed in the same tick is never listed; removing twice is harmless', async () => {
      const reg = make();
      reg.add('cid', 'n1', 'gone');
      reg.remove('cid', 'n1', 'gone');
      reg.remove('cid', 'n1', 'gone');
      reg.add('cid', 'n1', 'kept');
      assert.deepEqual(await listUntil(reg, 'cid', (l) => l.length > 0), [{ node: 'n1', session: 'kept' }]);
    });

    if (!factory.distributed) return;

    void test("cross-node: every node sees every node's sessions", async () => {
      const a = make();
      const b = make();
      a.add('dee', 'na', 'sa');
      b.add('dee', 'nb', 'sb');
      const want = [
        { node: 'na', session: 'sa' },
        { node: 'nb', session: 'sb' },
      ];
      assert.deepEqual(await listUntil(a, 'dee', (l) => l.length === 2), want);
      assert.deepEqual(await b.list('dee'), want);
    });

    void test('cross-node: a node whose entries Redis lost (lease lapsed) writes them again at its next renewal', async () => {
      if (!factory.cleanup) return;
      const node = make(600);
      const other = make(600);
      node.add('ivy', 'n1', 's1');
      node.add('joe', 'n1', 's2');
      await listUntil(other, 'joe', (l) => l.length === 1);
      await factory.cleanup(space);
      assert.deepEqual(await other.list('ivy'), []);
      assert.deepEqual(await listUntil(other, 'ivy', (l) => l.length === 1, 3_000), [{ node: 'n1', session: 's1' }]);
      assert.deepEqual(await listUntil(other, 'joe', (l) => l.length === 1, 3_000), [{ node: 'n1', session: 's2' }]);
    });

    void test('cross-node: a node that stops refreshing (crash) drops out within the TTL; live ones are refreshed', async () => {
      const ttl = 600;
      const crashed = make(ttl);
      const live = make(ttl);
      crashed.add('eve', 'dead', 's1');
      live.add('eve', 'alive', 's2');
      await listUntil(live, 'eve', (l) => l.length === 2);
      // Closing without removing leaves the entries behind, as a SIGKILL would.
      await crashed.close();
      const started = Date.now();
      const after = await listUntil(live, 'eve', (l) => l.length === 1, 3 * ttl);
      assert.ok(Date.now() - started <= ttl + 300, `dropped after ${Date.now() - started} ms`);
      assert.deepEqual(after, [{ node: 'alive', session: 's2' }]);
      await sleep(2 * ttl);
      assert.deepEqual(await live.list('eve'), [{ node: 'alive', session: 's2' }]);
    });
  });
}
