/**
 * Node process metrics (prom-client's stock `process_*` and `nodejs_*` series) at a cost an idle
 * node can afford. The event loop delay is sampled by a libuv timer; prom-client's default, every
 * 10 ms, wakes an otherwise idle process 100 times a second, which cost more CPU than 10,000 held
 * connections (bench/idle.js). Every delay monitor of Herald samples every
 * LOOP_DELAY_RESOLUTION_MS instead: a stall of at least that long is always seen, shorter ones
 * only when a sample falls due inside them.
 */
import { collectDefaultMetrics, type Registry } from 'prom-client';

/** Sampling interval of every event loop delay monitor, ms. */
export const LOOP_DELAY_RESOLUTION_MS = 100;

/** Register the stock process and Node.js metrics on `registry`. */
export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: LOOP_DELAY_RESOLUTION_MS });
}
