import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Outgoing } from '../../src/core/publication.js';
import { SubscriptionState } from '../../src/core/subscription.js';

const out = (offset: number, epoch = 'e'): Outgoing => new Outgoing({ channel: 'c', epoch, offset, time: 0, payload: Buffer.from(String(offset)) });

describe('SubscriptionState', () => {
  test('buffers live publications while recovering and releases those past the settled position', () => {
    const st = new SubscriptionState('c');
    assert.equal(st.recovering, true);
    for (const o of [2, 3, 4]) assert.equal(st.accept(out(o)), false);
    const released = st.settle({ epoch: 'e', offset: 3 });
    assert.deepEqual(
      released.map((o) => o.pub.offset),
      [4],
    );
    assert.equal(st.recovering, false);
    assert.deepEqual({ epoch: st.epoch, offset: st.offset }, { epoch: 'e', offset: 4 });
  });

  test('after settling, duplicates and older offsets of the same epoch are dropped', () => {
    const st = new SubscriptionState('c');
    st.settle({ epoch: 'e', offset: 5 });
    assert.equal(st.accept(out(5)), false);
    assert.equal(st.accept(out(3)), false);
    assert.equal(st.accept(out(6)), true);
    assert.equal(st.accept(out(6)), false);
    assert.equal(st.offset, 6);
  });

  test('a publication of a new epoch is delivered and moves the position', () => {
    const st = new SubscriptionState('c');
    st.settle({ epoch: 'e', offset: 10 });
    assert.equal(st.accept(out(1, 'f')), true);
    assert.deepEqual({ epoch: st.epoch, offset: st.offset }, { epoch: 'f', offset: 1 });
  });

  test('buffered duplicates are released once, in order', () => {
    const st = new SubscriptionState('c');
    for (const o of [4, 4, 5]) st.accept(out(o));
    assert.deepEqual(
      st.settle({ epoch: 'e', offset: 3 }).map((o) => o.pub.offset),
      [4, 5],
    );
  });
});

describe('Outgoing', () => {
  test('runs each encoder once and shares the result', () => {
    const o = out(1);
    let calls = 0;
    const enc = (): Buffer => {
      calls++;
      return Buffer.from('x');
    };
    const a = o.encoded(enc);
    const b = o.encoded(enc);
    assert.equal(a, b);
    assert.equal(calls, 1);
  });
});
