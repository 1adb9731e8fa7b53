/**
 * The session registry interface: which nodes hold which sessions of a user, cluster-wide. Nodes
 * record their users' sessions as they open and close; a node's entries live as long as the
 * node's lease, which it renews on a timer at a cost independent of its number of sessions, so a
 * node that dies without a clean shutdown drops out within one TTL. Long-poll requests are not sessions here (each request is a new client id).
 */

/** One live session of a user. */
export interface SessionEntry {
  /** The node holding it (HeraldCore.nodeId). */
  readonly node: string;
  /** The session's client id on that node (what `connect` returned; `POST /api/disconnect {client}` takes it). */
  readonly session: string;
}

/** The session registry engine (memory for one process, Redis for a cluster). */
export interface SessionRegistry {
  /**
   * Record a session of `user` on `node` (adding it again changes nothing). Writes are batched:
   * a listing may miss the session for a moment (one tick). The entry stays until `remove` or the
   * node's death; the engine never throws here (an engine outage delays the entry until the
   * first lease renewal after it ends).
   */
  add(user: string, node: string, session: string): void;
  /**
   * Forget a session; a session never added is ignored. Batched like `add`; when the write is
   * lost the entry stays until the node's lease ends.
   */
  remove(user: string, node: string, session: string): void;
  /** Live sessions of `user` on every node, sorted by node then session. Rejects HERALD_ERR_UNAVAILABLE when the engine is down. */
  list(user: string): Promise<SessionEntry[]>;
  /** Write what is pending, stop refreshing and release connections. */
  close(): Promise<void>;
}

/** Sort entries by node, then session (the order `SessionRegistry.list` promises); engines call it. */
export function sortEntries(list: SessionEntry[]): SessionEntry[] {
  return list.sort((a, b) => (a.node === b.node ? cmp(a.session, b.session) : cmp(a.node, b.node)));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
