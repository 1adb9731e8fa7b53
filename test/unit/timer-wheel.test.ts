import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { TimerWheel } from '../../src/core/timer-wheel.js';
import { advance } from '../helpers/mock-clock.js';

describe('TimerWheel', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  test('visits every item once per period with one timer', () => {
    const visits = new Map<string, number>();
    const wheel = new TimerWheel<string>(400, (s) => visits.set(s, (visits.get(s) ?? 0) + 1), 4);
    for (const s of ['a', 'b', 'c', 'd', 'e']) wheel.add(s);
    assert.equal(wheel.size, 5);
    advance(400, 100);
    assert.deepEqual([...visits.values()], [1, 1, 1, 1, 1]);
    advance(800, 100);
    assert.deepEqual([...visits.values()], [3, 3, 3, 3, 3]);
    wheel.stop();
  });

  test('a removed item is not visited again; stop ends visits', () => {
    const seen: string[] = [];
    const wheel = new TimerWheel<string>(100, (s) => seen.push(s), 2);
    wheel.add('x');
    wheel.add('y');
    wheel.remove('x');
    wheel.remove('absent');
    assert.equal(wheel.size, 1);
    advance(100, 50);
    assert.deepEqual(seen, ['y']);
    wheel.stop();
    advance(1_000, 50);
    assert.deepEqual(seen, ['y']);
  });

  test('runs its timer only while it holds items, and not after stop', () => {
    const armed = mock.method(globalThis, 'setTimeout');
    const seen: string[] = [];
    const wheel = new TimerWheel<string>(100, (s) => seen.push(s), 2);
    assert.equal(armed.mock.callCount(), 0, 'an empty wheel arms no timer');
    wheel.add('a');
    wheel.add('b');
    assert.equal(armed.mock.callCount(), 1);
    wheel.remove('a');
    wheel.remove('b');
    advance(1_000, 50);
    assert.deepEqual(seen, []);
    assert.equal(armed.mock.callCount(), 1, 'the tick that found the wheel empty did not arm another');
    wheel.add('c');
    assert.equal(armed.mock.callCount(), 2, 'the first item after empty arms it again');
    advance(100, 50);
    assert.deepEqual(seen, ['c']);
    wheel.stop();
    const arms = armed.mock.callCount();
    wheel.remove('c');
    wheel.add('d');
    assert.equal(armed.mock.callCount(), arms, 'a stopped wheel stays stopped');
    advance(1_000, 50);
    assert.deepEqual(seen, ['c']);
    armed.mock.restore();
  });
});
