/**
 * The presence engine suite: the guarantees of PresenceStore (src/core/im/presence.ts), run over
 * every engine. Engines shared between instances (Redis) also run the cross-node and TTL tests.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { PresenceStore } from '../../src/core/im/presence.js';

/** Creates presence engines for the suite. */
export interface PresenceFactory {
  /** A new engine; engines of one `space` share entries as nodes of one cluster do. `ttlMs`: a node's entry lifetime without a refresh. */
  create(space: string, ttlMs?: number): PresenceStore;
  /** True when engines of one space share state (cross-node tests run). */
  readonly distributed: boolean;
  cleanup?(space: string): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

let spaces = 0;

/** Register the suite for one engine. */
export function presenceSuite(name: string, factory: PresenceFactory): void {
  void describe(`presence engine: ${name}`, () => {
    let space = '';
    let open: PresenceStore[] = [];
    const make = (ttlMs?: number): PresenceStore => {
      const p = factory.create(space, ttlMs);
      open.push(p);
      return p;
    };
    beforeEach(() => {
      space = `${process.pid}-${Date.now().toString(36)}-${++spaces}`;
      open = [];
    });
    afterEach(async () => {
      for (const p of open) await p.close();
      await factory.cleanup?.(space);
    });

    void test('online while any node has a session, offline with lastSeen after the last', async () => {
      const p = make();
      assert.deepEqual(await p.get(['ann']), [{ user: 'ann', state: 'offline' }]);
      assert.equal((await p.setConnected('ann', 'n1', true)).state, 'online');
      assert.equal((await p.setConnected('ann', 'n2', true)).state, 'online');
      assert.equal((await p.setConnected('ann', 'n1', false)).state, 'online');
      const off = await p.setConnected('ann', 'n2', false);
      assert.equal(off.state, 'offline');
      assert.ok(off.lastSeen && Math.abs(off.lastSeen - Date.now()) < 5_000);
      assert.equal((await p.get(['ann']))[0]!.lastSeen, off.lastSeen);
    });

    void test('the chosen state and status show while online, and only then', async () => {
      const p = make();
      await p.setConnected('bob', 'n1', true);
      assert.deepEqual(await p.setChosen('bob', 'busy', 'in a meeting'), {
        user: 'bob',
        state: 'busy',
        status: 'in a meeting',
        lastSeen: (await p.get(['bob']))[0]!.lastSeen,
      });
      assert.equal((await p.get(['bob']))[0]!.state, 'busy');
      assert.equal((await p.setChosen('bob', 'away')).status, undefined, 'no status clears it');
      await p.setConnected('bob', 'n1', false);
      assert.equal((await p.get(['bob']))[0]!.state, 'offline');
    });

    void test('get answers every user asked, in order; unknown users are offline with no lastSeen', async () => {
      const p = make();
      await p.setConnected('cat', 'n1', true);
      const got = await p.get(['nobody', 'cat', 'nobody-else']);
      assert.deepEqual(
        got.map((r) => [r.user, r.state]),
        [
          ['nobody', 'offline'],
          ['cat', 'online'],
          ['nobody-else', 'offline'],
        ],
      );
      assert.equal(got[0]!.lastSeen, undefined);
      assert.deepEqual(await p.get([]), []);
    });

    void test('disconnecting a node that holds no session changes nothing', async () => {
      const p = make();
      await p.setConnected('dan', 'n1', true);
      assert.equal((await p.setConnected('dan', 'n9', false)).state, 'online');
      assert.equal((await p.get(['dan']))[0]!.state, 'online');
    });

    if (!factory.distributed) return;

    void test('nodes see each other’s sessions and choices; a crashed node’s sessions expire by TTL', async () => {
      const a = make(600);
      const b = make(600);
      await a.setConnected('eve', 'node-a', true);
      await a.setChosen('eve', 'away');
      assert.equal((await b.get(['eve']))[0]!.state, 'away');
      // Node A keeps refreshing: still online well past one TTL.
      await sleep(1_000);
      assert.equal((await b.get(['eve']))[0]!.state, 'away');
      // Node A dies (no clean disconnect): the session expires.
      await a.close();
      await sleep(900);
      assert.equal((await b.get(['eve']))[0]!.state, 'offline');
    });

    void test('a node whose entries Redis lost (lease lapsed) writes them again at its next renewal', async () => {
      if (!factory.cleanup) return;
      const a = make(600);
      const b = make(600);
      await a.setConnected('gus', 'node-a', true);
      await a.setConnected('hal', 'node-a', true);
      await factory.cleanup(space);
      assert.deepEqual(
        (await b.get(['gus', 'hal'])).map((r) => r.state),
        ['offline', 'offline'],
      );
      // The next renewal (every third of the TTL) finds its lease gone and restores both users.
      const deadline = Date.now() + 3_000;
      let states: string[] = [];
      while (Date.now() < deadline && (states = (await b.get(['gus', 'hal'])).map((r) => r.state)).some((st) => st !== 'online')) await sleep(50);
      assert.deepEqual(states, ['online', 'online']);
    });

    void test('a user is online while any of two nodes holds a session', async () => {
      const a = make();
      const b = make();
      await a.setConnected('fay', 'node-a', true);
      await b.setConnected('fay', 'node-b', true);
      assert.equal((await a.setConnected('fay', 'node-a', false)).state, 'online');
      assert.equal((await a.get(['fay']))[0]!.state, 'online');
      assert.equal((await b.setConnected('fay', 'node-b', false)).state, 'offline');
    });
  });
}
