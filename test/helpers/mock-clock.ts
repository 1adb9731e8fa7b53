import { mock } from 'node:test';

/**
 * Advance node:test's mocked clock by `ms` in steps of `step`. A timer armed by a callback during
 * one `tick` falls due only in a later one, so code that re-arms a timeout each run (a timer
 * wheel, an on-demand interval) needs steps no longer than its period.
 */
export function advance(ms: number, step: number): void {
  for (let t = 0; t < ms; t += step) mock.timers.tick(step);
}
