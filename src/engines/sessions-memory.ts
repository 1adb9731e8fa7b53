/**
 * In-process session registry: one process is the whole cluster, so entries live exactly as long
 * as their sessions and need no TTL. A user costs one map entry and a small array.
 */
import type { SessionEntry, SessionRegistry } from '../core/sessions.js';

/** The in-memory session registry. */
export class MemorySessions implements SessionRegistry {
  readonly #users = new Map<string, SessionEntry[]>();

  add(user: string, node: string, session: string): void {
    const list = this.#users.get(user);
    if (!list) this.#users.set(user, [{ node, session }]);
    else if (!list.some((e) => e.node === node && e.session === session)) list.push({ node, session });
  }

  remove(user: string, node: string, session: string): void {
    const list = this.#users.get(user);
    const i = list?.findIndex((e) => e.node === node && e.session === session) ?? -1;
    if (i < 0) return;
    list!.splice(i, 1);
    if (list!.length === 0) this.#users.delete(user);
  }

  async list(user: string): Promise<SessionEntry[]> {
    return sortEntries([...(this.#users.get(user) ?? [])]);
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
