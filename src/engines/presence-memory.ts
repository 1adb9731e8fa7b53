/** In-process presence engine (single node, or each node alone). See core/im/presence.ts. */
import type { ChosenState, PresenceRecord, PresenceStore } from '../core/im/presence.js';

interface Entry {
  nodes: Set<string>;
  chosen: ChosenState;
  status: string | undefined;
  lastSeen: number | undefined;
}

/** Presence kept in a Map; entries of offline users with default state are dropped. */
export class MemoryPresence implements PresenceStore {
  readonly #users = new Map<string, Entry>();

  async setConnected(user: string, node: string, connected: boolean): Promise<PresenceRecord> {
    const e = this.#entry(user);
    if (connected) e.nodes.add(node);
    else if (e.nodes.delete(node) && e.nodes.size === 0) e.lastSeen = Date.now();
    if (connected) e.lastSeen = Date.now();
    return this.#record(user, e);
  }

  async setChosen(user: string, state: ChosenState, status?: string): Promise<PresenceRecord> {
    const e = this.#entry(user);
    e.chosen = state;
    e.status = status;
    return this.#record(user, e);
  }

  async get(users: readonly string[]): Promise<PresenceRecord[]> {
    return users.map((u) => {
      const e = this.#users.get(u);
      return e ? this.#record(u, e) : { user: u, state: 'offline' as const };
    });
  }

  async close(): Promise<void> {
    this.#users.clear();
  }

  #entry(user: string): Entry {
    let e = this.#users.get(user);
    if (!e) {
      e = { nodes: new Set(), chosen: 'online', status: undefined, lastSeen: undefined };
      this.#users.set(user, e);
    }
    return e;
  }

  #record(user: string, e: Entry): PresenceRecord {
    return {
      user,
      state: e.nodes.size > 0 ? e.chosen : 'offline',
      ...(e.status !== undefined ? { status: e.status } : {}),
      ...(e.lastSeen !== undefined ? { lastSeen: e.lastSeen } : {}),
    };
  }
}
