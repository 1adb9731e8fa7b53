/**
 * Engine instrumentation: wraps the IM store and the Redis broker so every operation publishes
 * its duration and outcome on `herald:im-store` / `herald:broker` (the metrics subscribe;
 * nothing is published without them). A wrapper changes no behaviour: same results, same errors,
 * same order.
 */
import diagnostics from 'node:diagnostics_channel';
import type { Broker } from '../core/broker.js';
import type { ImStore } from '../core/im/store.js';

/** IM store operations: `{ node, op, ok, ms }`. */
export const storeEvents = diagnostics.channel('herald:im-store');
/** Broker operations (Redis only): `{ node, op, ok, ms }`. */
export const brokerEvents = diagnostics.channel('herald:broker');

/** Payload of `herald:im-store` and `herald:broker`. */
export interface EngineOpEvent {
  readonly node: string;
  /** The engine method, e.g. `append`, `inbox`, `ack`; `publish`, `subscribe`, `history`. */
  readonly op: string;
  readonly ok: boolean;
  readonly ms: number;
}

/** `target` with each method except `untimed` timed on `channel` for node `node`. */
function instrument<T extends object>(target: T, node: string, channel: diagnostics.Channel, untimed: ReadonlySet<string>): T {
  /** The wrapper of each method, made at its first use (a store call on a hot path allocates nothing more). */
  const wrappers = new Map<string | symbol, { readonly fn: unknown; readonly wrapper: unknown }>();
  return new Proxy(target, {
    get(t, prop) {
      const value: unknown = Reflect.get(t, prop);
      if (typeof value !== 'function') return value;
      const known = wrappers.get(prop);
      if (known?.fn === value) return known.wrapper;
      const wrapper = typeof prop !== 'string' || untimed.has(prop) ? value.bind(t) : timed(t, prop, value as (...args: unknown[]) => unknown, node, channel);
      wrappers.set(prop, { fn: value, wrapper });
      return wrapper;
    },
  });
}

/** `fn` of `t` timed on `channel` as operation `op`. */
function timed(t: object, op: string, fn: (...args: unknown[]) => unknown, node: string, channel: diagnostics.Channel): (...args: unknown[]) => unknown {
  return (...args: unknown[]): unknown => {
    if (!channel.hasSubscribers) return fn.apply(t, args);
    const start = performance.now();
    const done = (ok: boolean): void => channel.publish({ node, op, ok, ms: performance.now() - start } satisfies EngineOpEvent);
    const result = fn.apply(t, args);
    if (result instanceof Promise)
      return result.then(
        (v) => (done(true), v),
        (err: unknown) => (done(false), Promise.reject(err)),
      );
    done(true);
    return result;
  };
}

/** Store operations not timed: lifecycle, not traffic. */
const STORE_UNTIMED = new Set(['open', 'close']);
/** Broker methods not timed: lifecycle and the readiness probe (it has its own gauge). */
const BROKER_UNTIMED = new Set(['start', 'close', 'ping']);

/** `store` with each operation timed for node `node`. */
export function instrumentStore(store: ImStore, node: string): ImStore {
  return instrument(store, node, storeEvents, STORE_UNTIMED);
}

/** `broker` (the Redis broker) with each operation timed for node `node`. */
export function instrumentBroker(broker: Broker, node: string): Broker {
  return instrument(broker, node, brokerEvents, BROKER_UNTIMED);
}
