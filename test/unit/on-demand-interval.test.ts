import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { OnDemandInterval } from '../../src/core/on-demand-interval.js';
import { advance } from '../helpers/mock-clock.js';

describe('OnDemandInterval', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  test('arms no timer until woken; runs every period while work remains; stops after a run that says none', () => {
    const armed = mock.method(globalThis, 'setTimeout');
    let work = 3;
    let runs = 0;
    const iv = new OnDemandInterval(100, () => {
      runs++;
      return --work > 0;
    });
    advance(1_000, 100);
    assert.equal(runs, 0, 'not woken: never runs');
    assert.equal(armed.mock.callCount(), 0, 'not woken: no timer');
    iv.wake();
    iv.wake();
    assert.equal(armed.mock.callCount(), 1, 'waking twice arms one timer');
    assert.equal(iv.running, true);
    mock.timers.tick(99);
    assert.equal(runs, 0, 'the first run is one period away');
    mock.timers.tick(1);
    assert.equal(runs, 1);
    advance(1_000, 100);
    assert.equal(runs, 3, 'ran until the run that found no work left, then stopped');
    assert.equal(iv.running, false);
    assert.equal(armed.mock.callCount(), 3, 'armed for each of the three runs, not after the last');
    work = 1;
    iv.wake();
    assert.equal(iv.running, true, 'woken again after it stopped');
    mock.timers.tick(100);
    assert.equal(runs, 4);
    assert.equal(iv.running, false);
    armed.mock.restore();
  });

  test('stop() is final: no run after it, and wake() does nothing', () => {
    let runs = 0;
    const iv = new OnDemandInterval(50, () => {
      runs++;
      return true;
    });
    iv.wake();
    advance(100, 50);
    assert.equal(runs, 2);
    iv.stop();
    assert.equal(iv.running, false);
    iv.wake();
    assert.equal(iv.running, false);
    advance(1_000, 50);
    assert.equal(runs, 2);
  });
});
