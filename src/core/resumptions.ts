/**
 * The resumption store interface: the state of client sessions that may be resumed on any node
 * of a cluster (XMPP stream management, XEP-0198), by resumption id. The node holding a session
 * records its state as it changes; a node the client comes back to claims the id, has the old
 * node let go, and takes the session over with the state last recorded. The memory engine serves
 * one process; the Redis engine a cluster.
 *
 * The state itself (`data`) is opaque here: the front that owns the session writes and reads it.
 */

/** Where a resumable session stands. */
export type ResumptionState =
  /** Held by `node`, which may still be writing to the client. */
  | 'live'
  /** Let go by its node with its final state (handed over, or the node shut down): resumable. */
  | 'parked'
  /** Over (the stream closed, the resumption timed out, the user was kicked): not resumable, its state tells how far it got. */
  | 'ended';

/** The recorded state of one resumable session. */
export interface ResumptionRecord {
  /** The authenticated user: only the same user may claim it. */
  readonly user: string;
  /** The node holding (or that last held) the session (HeraldCore.nodeId). */
  readonly node: string;
  /** The session's connection id on that node (what a `disconnect` control action names). */
  readonly session: string;
  readonly state: ResumptionState;
  /** The front's serialized state (bounded by the front). */
  readonly data: string;
}

/** The answer to a claim. */
export type ResumptionClaim =
  /** No such id, or it belongs to another user (the two are not told apart). */
  | { readonly type: 'unknown' }
  /** The session is over: not claimed; the record tells how far it got. */
  | { readonly type: 'ended'; readonly record: ResumptionRecord }
  /** Claimed for the claiming node: the record as it was. */
  | { readonly type: 'claimed'; readonly record: ResumptionRecord };

/** The resumption store engine. */
export interface ResumptionStore {
  /**
   * Record the state of session `id`. The write is refused (resolves false) when the stored
   * record belongs to another node, unless that node's record was claimed by `record.node`: a
   * claimer's write takes the session over (and ends the claim), and a node that let a session
   * go can no longer overwrite it. A `live` record lives while its writer's process renews it
   * (the engine does, at least every third of `ttlMs`), so it lapses within `ttlMs` of a crash;
   * any other lives `ttlMs` after this write. Never rejects: an engine failure resolves false
   * (and is logged by the engine).
   */
  put(id: string, record: ResumptionRecord, ttlMs: number): Promise<boolean>;
  /**
   * Atomically claim session `id` for `node` on behalf of `user`: `unknown` when there is no
   * record or it is another user's, `ended` when it is over, else the record, now claimed (a
   * later claim replaces an earlier one: the last claimer is the one whose `put` takes over).
   * Rejects HERALD_ERR_UNAVAILABLE when the engine is down.
   */
  claim(id: string, user: string, node: string): Promise<ResumptionClaim>;
  /** The record of `id`, or undefined. Rejects HERALD_ERR_UNAVAILABLE when the engine is down. */
  get(id: string): Promise<ResumptionRecord | undefined>;
  /** Finish the writes in flight, stop renewing and release connections. */
  close(): Promise<void>;
}
