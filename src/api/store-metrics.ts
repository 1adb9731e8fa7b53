/**
 * IM store instrumentation: wraps an ImStore so every operation publishes its duration and
 * outcome on `herald:im-store` (the metrics subscribe; nothing is published without them).
 * The wrapper changes no behaviour: same results, same errors, same order.
 */
import diagnostics from 'node:diagnostics_channel';
import type { ImStore } from '../core/im/store.js';

/** IM store operations: `{ node, op, ok, ms }`. */
export const storeEvents = diagnostics.channel('herald:im-store');

/** Payload of `herald:im-store`. */
export interface StoreEvent {
  readonly node: string;
  /** The ImStore method, e.g. `append`, `inbox`, `ack`. */
  readonly op: string;
  readonly ok: boolean;
  readonly ms: number;
}

/** Operations not timed: lifecycle, not traffic. */
const UNTIMED = new Set(['open', 'close']);

/** `store` with each operation timed for node `node`. */
export function instrumentStore(store: ImStore, node: string): ImStore {
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== 'function' || typeof prop !== 'string' || UNTIMED.has(prop)) return typeof value === 'function' ? value.bind(target) : value;
      const fn = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]): unknown => {
        if (!storeEvents.hasSubscribers) return fn.apply(target, args);
        const start = performance.now();
        const done = (ok: boolean): void => storeEvents.publish({ node, op: prop, ok, ms: performance.now() - start } satisfies StoreEvent);
        const result = fn.apply(target, args);
        if (result instanceof Promise)
          return result.then(
            (v) => (done(true), v),
            (err: unknown) => (done(false), Promise.reject(err)),
          );
        done(true);
        return result;
      };
    },
  });
}
