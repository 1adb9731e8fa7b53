import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BUSY_INTERVAL_MS, IDLE_INTERVAL_MS, loopDelayIntervalMs, openLoopDelay } from '../../src/api/loop-delay.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait (polling every 50 ms, up to `ms`) until `cond` holds. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** Keep the event loop busy (synchronously) for `ms`. */
function stall(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

void test('the loop delay sampler slows to one wake a second on an idle loop, sees a stall there, and speeds up again', async () => {
  const reader = openLoopDelay();
  try {
    assert.equal(loopDelayIntervalMs(), BUSY_INTERVAL_MS, 'it starts at the fast interval');
    // A second of quiet fast intervals: the loop idles, the sampler slows down.
    await until(() => loopDelayIntervalMs() === IDLE_INTERVAL_MS, 10_000, 'the idle interval');
    reader.histogram.reset();
    // A stall longer than the slow interval always delays one of its wake-ups.
    stall(IDLE_INTERVAL_MS + 200);
    await until(() => reader.histogram.count > 0, 3_000, 'a sample after the stall');
    assert.ok(reader.histogram.max >= 150e6, `the stall was recorded: max ${reader.histogram.max / 1e6} ms`);
    assert.equal(loopDelayIntervalMs(), BUSY_INTERVAL_MS, 'a working loop is sampled at the fast interval again');
  } finally {
    reader.close();
  }
});

void test('each reader has its own histogram: one reset does not take the other reader’s samples', async () => {
  const a = openLoopDelay();
  const b = openLoopDelay();
  try {
    await until(() => a.histogram.count >= 2 && b.histogram.count >= 2, 5_000, 'samples in both readers');
    a.histogram.reset();
    assert.equal(a.histogram.count, 0);
    assert.ok(b.histogram.count >= 2);
  } finally {
    a.close();
    b.close();
  }
});
