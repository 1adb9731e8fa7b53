/**
 * In-process session registry: one process is the whole cluster, so entries live exactly as long
 * as their sessions and need no TTL. A user costs one map entry and a small array.
 */
import { type SessionEntry, type SessionRegistry, sortEntries } from '../core/sessions.js';

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
