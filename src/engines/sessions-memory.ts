/**
 * In-process session registry: one process is the whole cluster, so entries live exactly as long
 * as their sessions and need no TTL.
 */
import type { SessionEntry, SessionRegistry } from '../core/sessions.js';

/** The in-memory session registry. */
export class MemorySessions implements SessionRegistry {
  /** user → node → sessions. */
  readonly #users = new Map<string, Map<string, Set<string>>>();

  add(user: string, node: string, session: string): void {
    let nodes = this.#users.get(user);
    if (!nodes) this.#users.set(user, (nodes = new Map()));
    let sessions = nodes.get(node);
    if (!sessions) nodes.set(node, (sessions = new Set()));
    sessions.add(session);
  }

  remove(user: string, node: string, session: string): void {
    const nodes = this.#users.get(user);
    const sessions = nodes?.get(node);
    if (!nodes || !sessions?.delete(session)) return;
    if (sessions.size === 0) nodes.delete(node);
    if (nodes.size === 0) this.#users.delete(user);
  }

  async list(user: string): Promise<SessionEntry[]> {
    const out: SessionEntry[] = [];
    for (const [node, sessions] of this.#users.get(user) ?? []) for (const session of sessions) out.push({ node, session });
    return sortEntries(out);
  }

  async close(): Promise<void> {
    this.#users.clear();
  }
}

/** Sort entries by node, then session (the order `SessionRegistry.list` promises). */
export function sortEntries(list: SessionEntry[]): SessionEntry[] {
  return list.sort((a, b) => (a.node === b.node ? cmp(a.session, b.session) : cmp(a.node, b.node)));
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
