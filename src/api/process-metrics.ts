/**
 * Node process metrics (prom-client's stock `process_*` and `nodejs_*` series) at a cost an idle
 * node can afford. prom-client samples the event loop delay with a fixed-resolution monitor that
 * wakes the process forever (every 10 ms by default); here the `nodejs_eventloop_lag_*` series
 * come from Herald's own sampler instead (`loop-delay.ts`: every 100 ms while the loop works, so
 * a stall of 100 ms or more is always seen, and once a second while it idles). The names, help
 * texts and cluster aggregation of the series are prom-client's.
 */
import type { RecordableHistogram } from 'node:perf_hooks';
import { collectDefaultMetrics, Gauge, type Registry } from 'prom-client';
import { openLoopDelay } from './loop-delay.js';

/**
 * Resolution given to prom-client's own monitor, ms: the largest a libuv timer takes in Node, so
 * it never fires (its series are replaced below).
 */
const NEVER_MS = 2 ** 31 - 1;

/** prom-client's event loop delay series: name suffix, help, cluster aggregator, value of the histogram (ns). */
const LAG_SERIES: ReadonlyArray<[string, string, 'min' | 'max' | 'average', (h: RecordableHistogram) => number]> = [
  ['min', 'The minimum recorded event loop delay.', 'min', (h) => h.min],
  ['max', 'The maximum recorded event loop delay.', 'max', (h) => h.max],
  ['mean', 'The mean of the recorded event loop delays.', 'average', (h) => h.mean],
  ['stddev', 'The standard deviation of the recorded event loop delays.', 'average', (h) => h.stddev],
  ['p50', 'The 50th percentile of the recorded event loop delays.', 'average', (h) => h.percentile(50)],
  ['p90', 'The 90th percentile of the recorded event loop delays.', 'average', (h) => h.percentile(90)],
  ['p99', 'The 99th percentile of the recorded event loop delays.', 'average', (h) => h.percentile(99)],
];

/**
 * Register the stock process and Node.js metrics on `registry`. Returns the function that stops
 * this registry's share of the loop delay sampler (call it when the server closes).
 */
export function collectProcessMetrics(registry: Registry): () => void {
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: NEVER_MS });
  for (const [suffix] of LAG_SERIES) registry.removeSingleMetric(`nodejs_eventloop_lag_${suffix}_seconds`);
  registry.removeSingleMetric('nodejs_eventloop_lag_seconds');

  const reader = openLoopDelay();
  const gauges = LAG_SERIES.map(
    ([suffix, help, aggregator, value]) =>
      [new Gauge({ name: `nodejs_eventloop_lag_${suffix}_seconds`, help, registers: [registry], aggregator }), value] as const,
  );
  new Gauge({
    name: 'nodejs_eventloop_lag_seconds',
    help: 'Lag of event loop in seconds.',
    registers: [registry],
    aggregator: 'average',
    // This one series' collect sets all of them, as in prom-client.
    async collect() {
      const h = reader.histogram;
      // An empty histogram (no sample since the last scrape) reports 0, not its sentinel extremes.
      for (const [gauge, value] of gauges) gauge.set(h.count > 0 ? value(h) / 1e9 : 0);
      h.reset();
      const start = process.hrtime.bigint();
      await new Promise<void>((resolve) => setImmediate(resolve));
      this.set(Number(process.hrtime.bigint() - start) / 1e9);
    },
  });
  return () => reader.close();
}
