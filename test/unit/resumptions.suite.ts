/**
 * The resumption store suite: the guarantees of ResumptionStore (src/core/resumptions.ts), run
 * over every engine. Engines shared between instances (Redis) also run the crash test: a live
 * record lapses once its writer stops renewing it.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, test } from 'node:test';
import type { ResumptionRecord, ResumptionState, ResumptionStore } from '../../src/core/resumptions.js';

/** Creates stores for the suite. */
export interface ResumptionsFactory {
  /** A new store; stores of one `space` share records as nodes of one cluster do. */
  create(space: string): ResumptionStore;
  /** True when stores of one space share state (the crash test runs). */
  readonly distributed: boolean;
  cleanup?(space: string): Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rec = (node: string, state: ResumptionState, data = '{}', user = 'alice'): ResumptionRecord => ({ user, node, session: `${node}-s`, state, data });

let spaces = 0;

/** Register the suite for one engine. */
export function resumptionsSuite(name: string, factory: ResumptionsFactory): void {
  void describe(`resumption store: ${name}`, () => {
    let space = '';
    let open: ResumptionStore[] = [];
    const make = (): ResumptionStore => {
      const s = factory.create(space);
      open.push(s);
      return s;
    };
    beforeEach(() => {
      space = `${process.pid}-${Date.now().toString(36)}-${++spaces}`;
      open = [];
    });
    afterEach(async () => {
      for (const s of open) await s.close();
      await factory.cleanup?.(space);
    });

    test('a record is read back; only its user claims it, and another user is answered like an unknown id', async () => {
      const s = make();
      assert.equal(await s.put('id1', rec('A', 'live', '{"x":1}'), 60_000), true);
      assert.deepEqual(await s.get('id1'), rec('A', 'live', '{"x":1}'));
      assert.deepEqual(await s.claim('id1', 'mallory', 'B'), { type: 'unknown' });
      assert.deepEqual(await s.claim('nope', 'alice', 'B'), { type: 'unknown' });
      assert.deepEqual(await s.claim('id1', 'alice', 'B'), { type: 'claimed', record: rec('A', 'live', '{"x":1}') });
    });

    test('an ended record is not claimed: the claim returns it as it is', async () => {
      const s = make();
      await s.put('id1', rec('A', 'ended', '{"in":3}'), 60_000);
      assert.deepEqual(await s.claim('id1', 'alice', 'B'), { type: 'ended', record: rec('A', 'ended', '{"in":3}') });
      assert.equal(await s.put('id1', rec('B', 'live'), 60_000), false, 'an ended record is not taken over');
    });

    test("another node's write is refused until it claims; the holder may still record its final state; then the claimer takes over", async () => {
      const a = make();
      const b = make();
      await a.put('id1', rec('A', 'live', '1'), 60_000);
      assert.equal(await b.put('id1', rec('B', 'live', 'b'), 60_000), false);
      assert.equal((await b.claim('id1', 'alice', 'B')).type, 'claimed');
      assert.equal(await a.put('id1', rec('A', 'parked', '2'), 60_000), true, 'the holder records its final state');
      assert.deepEqual(await b.get('id1'), rec('A', 'parked', '2'));
      assert.equal(await b.put('id1', rec('B', 'live', 'b'), 60_000), true, 'the claimer takes over');
      assert.equal(await a.put('id1', rec('A', 'ended', '3'), 60_000), false, 'the old holder can no longer write');
      assert.deepEqual(await a.get('id1'), rec('B', 'live', 'b'));
      assert.equal(await make().put('id1', rec('C', 'live'), 60_000), false, 'the claim ended with the takeover');
    });

    test('the last claim wins', async () => {
      const s = make();
      await s.put('id1', rec('A', 'parked'), 60_000);
      await s.claim('id1', 'alice', 'B');
      await s.claim('id1', 'alice', 'C');
      assert.equal(await s.put('id1', rec('B', 'live'), 60_000), false);
      assert.equal(await s.put('id1', rec('C', 'live'), 60_000), true);
    });

    test('a record that is not live expires its TTL after the write; a live one lives while its writer runs', async () => {
      const s = make();
      await s.put('parked', rec('A', 'parked'), 300);
      await s.put('live', rec('A', 'live'), 300);
      await sleep(700);
      assert.equal(await s.get('parked'), undefined);
      assert.deepEqual(await s.get('live'), rec('A', 'live'));
    });

    if (factory.distributed) {
      test('a live record lapses within its TTL once its writer stops (a crashed node)', async () => {
        const writer = make();
        const reader = make();
        await writer.put('id1', rec('A', 'live'), 300);
        await writer.close();
        await sleep(700);
        assert.equal(await reader.get('id1'), undefined);
      });
    }
  });
}
