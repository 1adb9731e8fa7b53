import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { TimerWheel } from '../../src/core/timer-wheel.js';

describe('TimerWheel', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setInterval'] }));
  afterEach(() => mock.timers.reset());

  test('visits every item once per period with one timer', () => {
    const visits = new Map<string, number>();
    const wheel = new TimerWheel<string>(400, (s) => visits.set(s, (visits.get(s) ?? 0) + 1), 4);
    for (const s of ['a', 'b', 'c', 'd', 'e']) wheel.add(s);
    assert.equal(wheel.size, 5);
    mock.timers.tick(400);
    assert.deepEqual([...visits.values()], [1, 1, 1, 1, 1]);
    mock.timers.tick(800);
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
    mock.timers.tick(100);
    assert.deepEqual(seen, ['y']);
    wheel.stop();
    mock.timers.tick(1_000);
    assert.deepEqual(seen, ['y']);
  });

  test('runs its interval only while it holds items, and not after stop', () => {
    const started = mock.method(globalThis, 'setInterval');
    const seen: string[] = [];
    const wheel = new TimerWheel<string>(100, (s) => seen.push(s), 2);
    assert.equal(started.mock.callCount(), 0, 'an empty wheel starts no interval');
    wheel.add('a');
    wheel.add('b');
    assert.equal(started.mock.callCount(), 1);
    wheel.remove('a');
    wheel.remove('b');
    mock.timers.tick(1_000);
    assert.deepEqual(seen, []);
    wheel.add('c');
    assert.equal(started.mock.callCount(), 2, 'the first item after empty starts it again');
    mock.timers.tick(100);
    assert.deepEqual(seen, ['c']);
    wheel.stop();
    wheel.remove('c');
    wheel.add('d');
    assert.equal(started.mock.callCount(), 2, 'a stopped wheel stays stopped');
    mock.timers.tick(1_000);
    assert.deepEqual(seen, ['c']);
    started.mock.restore();
  });
});
