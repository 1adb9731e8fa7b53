/** A tiny typed event emitter (no dependency on node:events, so it runs in browsers). */

/** Map of event name to payload type. */
export type EventMap = { [event: string]: unknown };

/** Typed listeners; a throwing listener never breaks the SDK (its error is reported to `onListenerError`). */
export class Emitter<E extends EventMap> {
  readonly #listeners = new Map<keyof E, Set<(payload: never) => void>>();

  /** Add a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: (payload: E[K]) => void): () => void {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener as (payload: never) => void);
    return () => this.off(event, listener);
  }

  /** Add a listener called at most once. */
  once<K extends keyof E>(event: K, listener: (payload: E[K]) => void): () => void {
    const off = this.on(event, (p) => {
      off();
      listener(p);
    });
    return off;
  }

  /** Remove a listener. */
  off<K extends keyof E>(event: K, listener: (payload: E[K]) => void): void {
    this.#listeners.get(event)?.delete(listener as (payload: never) => void);
  }

  /** Call every listener of `event` with `payload`. */
  protected emit<K extends keyof E>(event: K, payload: E[K]): void {
    const set = this.#listeners.get(event);
    if (!set) return;
    for (const l of [...set]) {
      try {
        (l as (p: E[K]) => void)(payload);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  /** Called when a listener throws (default: rethrown asynchronously so it is not lost). */
  protected onListenerError(err: unknown): void {
    setTimeout(() => {
      throw err;
    }, 0);
  }
}
