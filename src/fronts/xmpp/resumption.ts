/**
 * XEP-0198 resumption on any node of a cluster. A resumable session records its stream
 * management state in the resumption store (core/resumptions.ts) as it changes, at most once per
 * turn of the event loop: the stanzas handled from the client (`h` the server reports), the
 * stanzas sent and acknowledged, which unacknowledged stanza settles which inbox seq, the inbox
 * position below which nothing is the session's business, whether the client is available, its
 * carbons and joined rooms. Messages themselves stay in the IM store, which is durable.
 *
 * A `<resume/>` on another node (handoff): the node claims the id for the same authenticated user
 * (another user's claim is answered like an unknown id), tells the holding node to let go (a
 * `disconnect` control action for the old connection; the holder records its final state as
 * `parked`), waits for that up to HANDOFF_WAIT_MS or until the holder's session leaves the
 * session registry (a crashed node), and takes the session over with the state last recorded:
 * the client's `h` settles the inbox up to the seq of the last stanza it counts, and everything
 * after that is delivered again from the inbox. Nothing is ever bounced to a sender: what the
 * client did not acknowledge stays in its inbox.
 *
 * Limits of a handoff (a resumption on the same node has none): stanzas that carry no inbox
 * entry (presence, IQ results, receipts, chat states) sent and not acknowledged before the
 * handoff are not sent again (contacts' presence is sent afresh instead); after a crash, the
 * handled count is the one recorded last, at most one turn of the event loop behind.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { HeraldCore } from '../../core/core.js';
import type { ResumptionRecord, ResumptionStore } from '../../core/resumptions.js';
import { DisconnectCode } from '../../protocol/codes.js';

/** Counters wrap at 2^32 (XEP-0198 §4). */
const WRAP = 2 ** 32;
/** Longest wait for the holding node to let a session go, ms (a crashed one never does). */
export const HANDOFF_WAIT_MS = 2_000;
/** Interval between two looks at the record while waiting, ms. */
const POLL_MS = 25;
/** How long an ended session's record answers a resumption with how far it got, ms. */
export const ENDED_TTL_MS = 15 * 60_000;
/** Shortest lifetime given to a record, ms. */
const MIN_TTL_MS = 1_000;
/** Most joined rooms recorded (a user's groups are bounded by `im.maxGroupsPerUser`). */
const MAX_ROOMS = 10_000;
/** Most unacknowledged inbox stanzas recorded (the unacknowledged queue is bounded in bytes). */
const MAX_SENT = 1_000_000;

const u32 = z
  .number()
  .int()
  .min(0)
  .max(WRAP - 1);
const seq = z.number().int().min(0);
const dataSchema = z.object({
  resource: z.string().min(1).max(256),
  in: u32,
  out: u32,
  acked: u32,
  sent: z.array(z.tuple([u32, seq])).max(MAX_SENT),
  settled: seq,
  from: seq.nullable(),
  carbons: z.boolean(),
  rooms: z.array(z.string().max(80)).max(MAX_ROOMS),
});

/** The recorded stream management state of one session. */
export interface SmData {
  /** The bound resource. */
  readonly resource: string;
  /** Stanzas handled from the client, mod 2^32. */
  readonly in: number;
  /** Stanzas sent, and acknowledged by the client, mod 2^32. */
  readonly out: number;
  readonly acked: number;
  /** Unacknowledged stanzas that settle inbox entries: [stanza count mod 2^32, highest inbox seq settled]. */
  readonly sent: ReadonlyArray<readonly [number, number]>;
  /** Highest inbox seq settled (acknowledged to the IM, or about to be). */
  readonly settled: number;
  /** Inbox seq after which the session delivers (null: the client is not available, nothing is delivered). */
  readonly from: number | null;
  readonly carbons: boolean;
  /** Conversations of the joined rooms. */
  readonly rooms: readonly string[];
}

/** Serialize for the store. */
export function encodeSm(d: SmData): string {
  return JSON.stringify(d);
}

/** Read a record's data, or undefined when it is not well-formed (written by another version, or not by us). */
export function decodeSm(text: string): SmData | undefined {
  try {
    const r = dataSchema.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The highest inbox seq settled once the client acknowledges `h` stanzas, or undefined when `h`
 * counts more stanzas than were sent.
 */
export function settledBy(d: SmData, h: number): number | undefined {
  const n = (h - d.acked + WRAP) % WRAP;
  if (n > (d.out - d.acked + WRAP) % WRAP) return undefined;
  let settled = d.settled;
  for (const [count, s] of d.sent) if ((count - d.acked + WRAP) % WRAP <= n) settled = Math.max(settled, s);
  return settled;
}

/** Lifetimes of a session's records. */
function ttlOf(resumeTimeoutMs: number, state: 'live' | 'parked' | 'ended'): number {
  if (state === 'ended') return ENDED_TTL_MS;
  // A live record outlives its holder's crash by at least the resumption timeout.
  return Math.max(MIN_TTL_MS, state === 'live' ? Math.ceil(resumeTimeoutMs * 1.5) : resumeTimeoutMs);
}

/** Who a record belongs to. */
export interface SmOwner {
  readonly store: ResumptionStore;
  readonly user: string;
  readonly node: string;
  /** The connection id of the session on its node. */
  readonly session: string;
  readonly resumeTimeoutMs: number;
}

/** Writes the record of one resumable session: at most once per turn of the event loop, then a final state. */
export class SmRecorder {
  readonly #id: string;
  readonly #owner: SmOwner;
  readonly #snapshot: () => SmData;
  #scheduled = false;
  #done = false;

  constructor(id: string, owner: SmOwner, snapshot: () => SmData) {
    this.#id = id;
    this.#owner = owner;
    this.#snapshot = snapshot;
  }

  /** The state changed: record it once this turn of the event loop ends. */
  changed(): void {
    if (this.#scheduled || this.#done) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (!this.#done) void this.#put('live');
    });
  }

  /** The session is let go (`parked`: resumable elsewhere) or over (`ended`): the last write. */
  finish(state: 'parked' | 'ended'): Promise<boolean> {
    if (this.#done) return Promise.resolve(false);
    this.#done = true;
    return this.#put(state);
  }

  #put(state: 'live' | 'parked' | 'ended'): Promise<boolean> {
    const { store, user, node, session, resumeTimeoutMs } = this.#owner;
    const record: ResumptionRecord = { user, node, session, state, data: encodeSm(this.#snapshot()) };
    return store.put(this.#id, record, ttlOf(resumeTimeoutMs, state));
  }
}

/** The outcome of a resumption on this node of a session another node held. */
export type Handoff =
  /** Refused; `h`: the stanzas the server handled, when known (XEP-0198 §5). */
  | { readonly type: 'failed'; readonly h?: number }
  /** The client's `h` counts more than was sent. */
  | { readonly type: 'too-high'; readonly h: number; readonly sent: number }
  /** Taken over: the state the session goes on with (recorded already, held by this node). */
  | { readonly type: 'resumed'; readonly data: SmData };

/**
 * Take session `id` over from the node that holds it, for `owner.user` whose client
 * acknowledged `h` stanzas (see the module comment). Rejects HERALD_ERR_UNAVAILABLE when the
 * store is down.
 */
export async function handoff(core: HeraldCore, owner: SmOwner, id: string, h: number): Promise<Handoff> {
  const claim = await owner.store.claim(id, owner.user, owner.node);
  if (claim.type === 'unknown') return { type: 'failed' };
  let rec = claim.record;
  // This node's own record of a session it no longer holds: it ended without saying so.
  if (claim.type === 'ended' || (rec.state === 'live' && rec.node === owner.node)) return { type: 'failed', h: decodeSm(rec.data)?.in };
  if (rec.state === 'live') rec = await letGo(core, owner.store, id, rec);
  const data = decodeSm(rec.data);
  if (!data || rec.state === 'ended') return { type: 'failed', h: data?.in };
  let settled = settledBy(data, h);
  if (settled === undefined) {
    // A final record knows every stanza sent; a crashed holder's may miss the last ones the client got.
    if (rec.state !== 'live') return { type: 'too-high', h, sent: data.out };
    settled = settledBy(data, data.out)!;
  }
  const resumed: SmData = { ...data, out: h, acked: h, sent: [], settled, from: data.from === null ? null : Math.max(data.from, settled) };
  const record: ResumptionRecord = { user: owner.user, node: owner.node, session: owner.session, state: 'live', data: encodeSm(resumed) };
  // Refused when another node claimed the id meanwhile: the last claimer takes the session.
  if (!(await owner.store.put(id, record, ttlOf(owner.resumeTimeoutMs, 'live')))) return { type: 'failed', h: data.in };
  return { type: 'resumed', data: resumed };
}

/**
 * Ask the holder of a live record to let the session go, and wait until it did (the record is no
 * longer live, or no longer its), until its session left the registry (it crashed, or let go
 * without recording it), or HANDOFF_WAIT_MS; returns the record as last read.
 */
async function letGo(core: HeraldCore, store: ResumptionStore, id: string, rec: ResumptionRecord): Promise<ResumptionRecord> {
  await core
    .control({ type: 'disconnect', client: rec.session, code: DisconnectCode.RECONNECT, reason: 'stream resumed on another node' })
    .catch((err: unknown) => core.logger.warn({ err: String(err) }, 'xmpp handoff: the holder could not be told'));
  const deadline = Date.now() + HANDOFF_WAIT_MS;
  let gone = false;
  for (;;) {
    await sleep(POLL_MS);
    const now = await store.get(id);
    if (!now) return rec;
    if (now.state !== 'live' || now.node !== rec.node) return now;
    rec = now;
    if (gone || Date.now() >= deadline) return rec;
    // One more look at the record after the session left the registry (its last write may be on its way).
    gone = !(await core.sessions.list(rec.user)).some((e) => e.node === rec.node && e.session === rec.session);
  }
}
