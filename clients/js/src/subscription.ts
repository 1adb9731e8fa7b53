/** A channel subscription: its position and its events. */
import { Emitter } from './emitter.js';
import type { HeraldClientError } from './errors.js';
import type { Position, Publication } from './types.js';

/** State of a subscription. */
export type SubscriptionState = 'subscribing' | 'subscribed' | 'unsubscribed';

/** Payload of `subscribed`. */
export interface SubscribedEvent {
  readonly channel: string;
  /** True when this subscribe resumed from a known position (a reconnect, or `since`). */
  readonly resumed: boolean;
  /**
   * False when resuming could not deliver everything after the position (history too short or
   * reset): the application must re-sync the channel from its own source of truth.
   */
  readonly recovered: boolean;
  readonly position: Position;
}

/** Events of a subscription. */
export type SubscriptionEvents = {
  publication: Publication;
  subscribed: SubscribedEvent;
  unsubscribed: { readonly channel: string; readonly reason: string };
  join: { readonly channel: string; readonly user?: string; readonly client?: string };
  leave: { readonly channel: string; readonly user?: string; readonly client?: string };
  error: { readonly channel: string; readonly error: HeraldClientError };
};

/** Options of `client.subscribe()`. */
export interface SubscribeOptions {
  /** Resume after this position (`"<epoch>:<offset>"` or a Position). */
  readonly since?: Position | string;
  /** Replay the last N publications on the first subscribe. */
  readonly last?: number;
}

/** What the client does for a subscription (so `unsubscribe()` can reach it). */
export interface SubscriptionOwner {
  removeSubscription(sub: Subscription): void;
}

/** A subscription to one channel; created by `client.subscribe()`. */
export class Subscription extends Emitter<SubscriptionEvents> {
  readonly channel: string;
  state: SubscriptionState = 'subscribing';
  /** Position of the last publication delivered (undefined until subscribed). */
  position: Position | undefined;
  /** Replay count for the first subscribe. */
  last: number | undefined;
  /** @internal Whether `subscribed` was emitted in the current session. */
  announced = false;
  readonly #owner: SubscriptionOwner;
  #ready: Promise<SubscribedEvent> | undefined;

  /** @internal */
  constructor(owner: SubscriptionOwner, channel: string, position: Position | undefined, last: number | undefined) {
    super();
    this.#owner = owner;
    this.channel = channel;
    this.position = position;
    this.last = last;
  }

  /** Resolves at the first `subscribed`; rejects if subscribing fails. */
  ready(): Promise<SubscribedEvent> {
    this.#ready ??= new Promise((resolve, reject) => {
      if (this.state === 'subscribed' && this.position) {
        resolve({ channel: this.channel, resumed: false, recovered: true, position: this.position });
        return;
      }
      const offs = [
        this.once('subscribed', (e) => {
          offs.forEach((o) => o());
          resolve(e);
        }),
        this.once('error', (e) => {
          offs.forEach((o) => o());
          reject(e.error);
        }),
      ];
    });
    return this.#ready;
  }

  /** Stop receiving this channel. */
  unsubscribe(): void {
    this.#owner.removeSubscription(this);
  }

  /** @internal Emit an event (called by the client). */
  fire<K extends keyof SubscriptionEvents>(event: K, payload: SubscriptionEvents[K]): void {
    this.emit(event, payload);
  }
}
