/**
 * Inbox delivery of one node (part of the IM facade, `ImService` delegates here): publishing on
 * users' inbox channels, sessions coming and going (presence online/offline after a grace
 * period), and re-delivery of what was pushed but not acknowledged.
 *
 * - The node that delivers an inbox entry to a live session (whichever node appended it) tracks
 *   it until the user's cumulative ack covers it; unacked entries are re-sent (same ids and
 *   seqs, `redelivered`) after `im.redeliveryTimeoutMs`, doubling per attempt up to
 *   MAX_REDELIVERY_BACKOFF_MS, while the user has a session here.
 * - When a user's first session on this node appears, everything after the acked cursor that
 *   was committed by then is re-sent once.
 * - A publication the broker refused (broker down) marks the user; the sweep re-sends its
 *   unacked entries from the store until the broker takes them.
 */
import type { HeraldCore } from '../core.js';
import { OnDemandInterval } from '../on-demand-interval.js';
import { JSON_CONTENT_TYPE } from '../publication.js';
import type { PresenceRecord, PresenceStore } from './presence.js';
import type { ImStore } from './store.js';
import { inboxSeqOf, messageEventJson } from './wire.js';

/** Namespace of the personal channels. */
export const INBOX_NAMESPACE = 'inbox';
const INBOX_PREFIX = `${INBOX_NAMESPACE}:`;
/** Longest wait between two re-deliveries of the same entries. */
const MAX_REDELIVERY_BACKOFF_MS = 60_000;
/** Delay before re-sending to a user whose first session just subscribed, so its subscription has settled. */
const RECONNECT_REDELIVERY_DELAY_MS = 50;

/** The personal channel of a user. */
export function inboxChannel(user: string): string {
  return INBOX_PREFIX + user;
}

/** What delivery needs from the IM facade. */
export interface DeliveryHost {
  readonly core: HeraldCore;
  readonly store: ImStore;
  readonly presence: PresenceStore;
  /** Open the store (lazily). */
  ready(): Promise<void>;
  /** Whether the facade is closed (nothing more is sent). */
  closed(): boolean;
  /** A user's first session on this node appeared (register it as a known user). */
  seen(user: string): void;
  /** The user's aggregated presence changed (tell its peers). */
  presenceChanged(rec: PresenceRecord): Promise<void>;
  /** Log a failure of background work. */
  warn(err: unknown, msg: string): void;
}

interface Pending {
  /** Highest inbox seq delivered and awaiting its ack. */
  upTo: number;
  /** Highest ack seen while waiting. */
  acked: number;
  due: number;
  attempt: number;
}

/** Inbox publishing, sessions and re-delivery of one node. */
export class ImDelivery {
  readonly #h: DeliveryHost;
  readonly #cfg: HeraldCore['config']['im'];
  /** Users with a live inbox subscription on this node. */
  readonly #online = new Set<string>();
  readonly #offlineTimers = new Map<string, NodeJS.Timeout>();
  /** Users with inbox entries pushed but not yet acked. */
  readonly #pending = new Map<string, Pending>();
  /** Users an inbox publication failed for (broker down): their unacked entries are re-sent by the sweep until it works. */
  readonly #unpublished = new Set<string>();
  /** Runs while entries await an ack or a re-publish; a node with nothing unacked never wakes for it. */
  readonly #sweeper: OnDemandInterval;

  /** Watch the inbox channels of the node's hub and start the re-delivery sweep. */
  constructor(host: DeliveryHost) {
    this.#h = host;
    this.#cfg = host.core.config.im;
    host.core.hub.watch(INBOX_PREFIX, {
      active: (channel) => this.#sessionUp(channel.slice(INBOX_PREFIX.length)),
      idle: (channel) => this.#sessionDown(channel.slice(INBOX_PREFIX.length)),
      // The node that delivers an entry to a live session (whichever node appended it) awaits its ack.
      delivered: (pub) => {
        const seq = inboxSeqOf(pub.payload);
        if (seq !== undefined) this.#track(pub.channel.slice(INBOX_PREFIX.length), seq);
      },
    });
    const period = Math.max(20, Math.floor(this.#cfg.redeliveryTimeoutMs / 4));
    this.#sweeper = new OnDemandInterval(period, () => this.#sweep());
  }

  /** Stop the sweep and the offline timers. */
  close(): void {
    this.#sweeper.stop();
    for (const t of this.#offlineTimers.values()) clearTimeout(t);
    this.#offlineTimers.clear();
  }

  /** Publish a JSON body on a user's inbox channel (fire and forget; the store is the source of truth). */
  emit(user: string, body: Buffer): void {
    if (this.#h.closed()) return;
    this.#h.core.publish(inboxChannel(user), { payload: body, contentType: JSON_CONTENT_TYPE }, 'im').catch((err) => {
      if (!this.#unpublished.has(user)) this.#h.warn(err, 'inbox publish failed; re-sending from the store once the broker is back');
      this.#unpublished.add(user);
      this.#sweeper.wake();
    });
  }

  /** The user's ack cursor moved to `acked`: stop waiting for what it covers. */
  acked(user: string, acked: number): void {
    const pending = this.#pending.get(user);
    if (pending && acked >= pending.upTo) this.#pending.delete(user);
    else if (pending && acked > pending.acked) {
      // The client is acking as messages stream in: count the timeout from its latest progress.
      pending.acked = acked;
      pending.due = Date.now() + this.#cfg.redeliveryTimeoutMs;
      pending.attempt = 0;
    }
  }

  #track(user: string, seq: number): void {
    const p = this.#pending.get(user);
    if (p) p.upTo = Math.max(p.upTo, seq);
    else {
      this.#pending.set(user, { upTo: seq, acked: 0, due: Date.now() + this.#cfg.redeliveryTimeoutMs, attempt: 0 });
      this.#sweeper.wake();
    }
  }

  /** Re-publish what failed to publish and re-send what is overdue; returns whether anything still waits. */
  #sweep(): boolean {
    const now = Date.now();
    for (const user of this.#unpublished) {
      this.#unpublished.delete(user);
      this.#redeliver(user).catch((err) => this.#h.warn(err, 're-delivery failed'));
    }
    for (const [user, p] of this.#pending) {
      if (p.due > now) continue;
      // Users without a session here are re-sent to when their first session appears (#sessionUp).
      if (!this.#online.has(user)) {
        this.#pending.delete(user);
        continue;
      }
      p.attempt++;
      p.due = now + Math.min(this.#cfg.redeliveryTimeoutMs * 2 ** p.attempt, MAX_REDELIVERY_BACKOFF_MS);
      this.#redeliver(user).catch((err) => this.#h.warn(err, 're-delivery failed'));
    }
    return this.#pending.size > 0 || this.#unpublished.size > 0;
  }

  /**
   * Re-send every unacked inbox entry of a user (same ids, same inbox seqs); with
   * `committedBy`, only entries committed by then (a session that subscribed at that time gets
   * later ones live, so re-sending them would only make duplicates).
   */
  async #redeliver(user: string, committedBy = Infinity): Promise<void> {
    if (this.#h.closed()) return;
    await this.#h.ready();
    const store = this.#h.store;
    const cursor = await store.cursor(user);
    if (cursor.acked >= cursor.head) {
      this.#pending.delete(user);
      return;
    }
    const entries = (await store.inbox(user, cursor.acked, this.#cfg.syncLimit)).filter((e) => e.message.time <= committedBy);
    for (const e of entries) this.emit(user, Buffer.from(messageEventJson(e.message, e.seq, true)));
  }

  #sessionUp(user: string): void {
    const t = this.#offlineTimers.get(user);
    if (t) {
      clearTimeout(t);
      this.#offlineTimers.delete(user);
    }
    if (this.#online.has(user)) return;
    this.#online.add(user);
    this.#h.seen(user);
    const upAt = Date.now();
    setTimeout(() => {
      if (this.#online.has(user)) this.#redeliver(user, upAt).catch((err) => this.#h.warn(err, 're-delivery failed'));
    }, RECONNECT_REDELIVERY_DELAY_MS).unref();
    this.#h.presence
      .setConnected(user, this.#h.core.nodeId, true)
      .then((rec) => this.#h.presenceChanged(rec))
      .catch((err) => this.#h.warn(err, 'presence update failed'));
  }

  #sessionDown(user: string): void {
    if (this.#offlineTimers.has(user) || this.#h.closed()) return;
    const t = setTimeout(() => {
      this.#offlineTimers.delete(user);
      if (this.#h.core.hub.subscriberCount(inboxChannel(user)) > 0) return;
      this.#online.delete(user);
      this.#h.presence
        .setConnected(user, this.#h.core.nodeId, false)
        .then((rec) => this.#h.presenceChanged(rec))
        .catch((err) => this.#h.warn(err, 'presence update failed'));
    }, this.#cfg.presenceGraceMs);
    t.unref();
    this.#offlineTimers.set(user, t);
  }
}
