/**
 * The transport interface between the client and the wire. A transport opens one session to one
 * node, runs commands and keeps the server-side subscription set equal to what the client wants
 * (`hooks.wanted()`), reporting everything it receives through `TransportHooks`.
 */
import type { ConnectInfo, Position, Publication, TransportName, WantedChannel } from './types.js';
import type { HeraldClientError } from './errors.js';

/** How a transport reports to the client. */
export interface TransportHooks {
  /** The subscriptions the client wants now, with the positions to resume from. */
  wanted(): WantedChannel[];
  /**
   * A channel's subscription is live. `base` is the position just before the publications that
   * follow (either in `pubs` or as later `publication` calls); `recovered` is false when the
   * requested `since` could not be honoured (gap: the application must re-sync).
   */
  subscribed(channel: string, base: Position, recovered: boolean, pubs: readonly Publication[]): void;
  /** Subscribing failed (permission, bad channel…); the client drops the subscription. */
  subscribeFailed(channel: string, err: HeraldClientError): void;
  publication(pub: Publication): void;
  /** The server's position of a channel after a batch (long-poll), for channels without publications. */
  position(channel: string, pos: Position): void;
  channelEvent(type: 'join' | 'leave', channel: string, user: string | undefined, client: string | undefined): void;
  /** The server ended a subscription (channel deleted). */
  unsubscribed(channel: string, reason: string): void;
  /** The session is over (server disconnect code, or a client code for network loss). Called once. */
  closed(code: number, reason: string): void;
}

/** Identity and node of one session. */
export interface Endpoint {
  /** Base HTTP URL of the node (`http://host:port`). */
  readonly base: string;
  readonly user?: string;
  readonly token?: string;
}

/** One session over one transport. */
export interface Transport {
  readonly name: TransportName;
  /** Open the session; rejects with a `TRANSPORT` error when unreachable, or the server's error (auth). */
  open(): Promise<ConnectInfo>;
  /** Run a command; resolves with its result. */
  command(cmd: string, params: Record<string, unknown>): Promise<unknown>;
  /** The wanted subscription set changed; reconcile soon. */
  refresh(): void;
  /** Use a new token for the requests still to come (HTTP transports; WebSocket uses the `refresh` command). */
  setToken?(token: string): void;
  /** End the session without calling `hooks.closed`. */
  close(): void;
}
