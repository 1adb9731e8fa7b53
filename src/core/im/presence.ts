/**
 * The presence engine interface: which users are connected (aggregated over their sessions on
 * every node) and the state and status text they chose. The memory engine serves one process; a
 * Redis engine serves a cluster. A node's entries live as long as the node's lease, which the
 * node renews on a timer at a cost independent of its number of users; when a node stops
 * renewing (it crashed), its users go offline within one TTL without a clean shutdown.
 */

/** A presence state as shown to others. */
export type PresenceState = 'online' | 'away' | 'busy' | 'offline';

/** States a user may choose (offline is derived from having no session). */
export type ChosenState = 'online' | 'away' | 'busy';

/** A user's aggregated presence. */
export interface PresenceRecord {
  readonly user: string;
  /** `offline` when no node reports a session, else the chosen state (default `online`). */
  readonly state: PresenceState;
  /** Free status text, if set. */
  readonly status?: string;
  /** When the user was last seen connected (ms since the Unix epoch); absent if never. */
  readonly lastSeen?: number;
}

/** The presence engine. */
export interface PresenceStore {
  /**
   * Record whether `user` has a live session on `node`. A user is online while any node
   * reports it; going offline on the last node sets lastSeen. Resolves with the aggregated
   * record after the change.
   */
  setConnected(user: string, node: string, connected: boolean): Promise<PresenceRecord>;
  /** Set the chosen state and status text (undefined status clears it). Resolves with the aggregated record. */
  setChosen(user: string, state: ChosenState, status?: string): Promise<PresenceRecord>;
  /** Aggregated presence of each user (unknown users are offline with no lastSeen). */
  get(users: readonly string[]): Promise<PresenceRecord[]>;
  /** Release timers and connections. */
  close(): Promise<void>;
}
