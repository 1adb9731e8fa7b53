/**
 * Event loop delay of this process, sampled only as often as the loop's activity calls for.
 *
 * Node's `monitorEventLoopDelay` (and prom-client's metrics on it) wakes the process at a fixed
 * resolution forever, busy or not. On this project's benchmark host a wake-up of an otherwise idle
 * process costs tens to hundreds of microseconds of CPU, so ten a second were most of what an
 * idle node spent (docs/benchmarks.md, issue 17). This sampler is one timer for the process that
 * measures how late it fires:
 *
 * - while the loop works (its utilisation over the last interval at least BUSY_UTILIZATION) it
 *   fires every BUSY_INTERVAL_MS, so a stall of BUSY_INTERVAL_MS or more is always seen and
 *   recorded with its length (± one interval), as with a fixed monitor at that resolution;
 * - after IDLE_AFTER_TICKS quiet intervals in a row it fires every IDLE_INTERVAL_MS, and the first
 *   of those that finds the loop working again switches back. A stall on an idle loop is recorded
 *   only if it delays that slow wake-up (always, when it lasts IDLE_INTERVAL_MS or more), and the
 *   sampler is back at the fast interval from the wake-up after the stall.
 *
 * Each reader (the Prometheus metrics, the node report) gets its own histogram of the delays, so
 * one reader's reset does not take samples from another. The timer runs only while a reader is
 * open, and is unref'd: it never keeps the process alive.
 */
import { createHistogram, type EventLoopUtilization, performance, type RecordableHistogram } from 'node:perf_hooks';

/** Sampling interval while the loop works, ms: stalls this long or longer are always seen. */
export const BUSY_INTERVAL_MS = 100;
/** Sampling interval while the loop idles, ms. */
export const IDLE_INTERVAL_MS = 1_000;
/** Loop utilisation (0–1) over one interval at or above which the loop counts as working. */
const BUSY_UTILIZATION = 0.01;
/** Quiet fast intervals in a row before the sampler slows down (one second of quiet). */
const IDLE_AFTER_TICKS = IDLE_INTERVAL_MS / BUSY_INTERVAL_MS;

/** A reader's view: its histogram of delays (ns), which it may reset at will; close() when done. */
export interface LoopDelayReader {
  readonly histogram: RecordableHistogram;
  close(): void;
}

/** The process's one sampler. */
class LoopDelaySampler {
  readonly #readers = new Set<RecordableHistogram>();
  #timer: NodeJS.Timeout | undefined;
  #intervalMs = BUSY_INTERVAL_MS;
  #armedAt = 0;
  #quiet = 0;
  #elu: EventLoopUtilization | undefined;

  open(): LoopDelayReader {
    const histogram = createHistogram();
    this.#readers.add(histogram);
    if (!this.#timer) {
      this.#intervalMs = BUSY_INTERVAL_MS;
      this.#quiet = 0;
      this.#elu = performance.eventLoopUtilization();
      this.#arm();
    }
    return {
      histogram,
      close: () => {
        this.#readers.delete(histogram);
        if (this.#readers.size === 0) {
          clearTimeout(this.#timer);
          this.#timer = undefined;
        }
      },
    };
  }

  /** Current sampling interval, ms (for tests and the docs' claims). */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  #arm(): void {
    this.#armedAt = performance.now();
    this.#timer = setTimeout(this.#tick, this.#intervalMs);
    this.#timer.unref();
  }

  readonly #tick = (): void => {
    const now = performance.now();
    // How much later than asked the timer fired: the loop was busy with something else meanwhile.
    const lateNs = Math.max(1, Math.round((now - this.#armedAt - this.#intervalMs) * 1e6));
    for (const h of this.#readers) h.record(lateNs);
    const elu = performance.eventLoopUtilization();
    const busy = performance.eventLoopUtilization(elu, this.#elu).utilization >= BUSY_UTILIZATION;
    this.#elu = elu;
    if (busy) {
      this.#quiet = 0;
      this.#intervalMs = BUSY_INTERVAL_MS;
    } else if (++this.#quiet >= IDLE_AFTER_TICKS) {
      this.#intervalMs = IDLE_INTERVAL_MS;
    }
    this.#arm();
  };
}

const sampler = new LoopDelaySampler();

/** Open a reader of the process's event loop delay (starts the sampler if it is the first). */
export function openLoopDelay(): LoopDelayReader {
  return sampler.open();
}

/** The sampler's current interval, ms: BUSY_INTERVAL_MS or IDLE_INTERVAL_MS. */
export function loopDelayIntervalMs(): number {
  return sampler.intervalMs;
}
