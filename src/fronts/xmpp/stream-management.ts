/**
 * XEP-0198 stream management state of one XMPP session: the count of stanzas handled from the
 * client (`h` the server reports), and the stanzas sent and not yet acknowledged by the client,
 * each with the inbox seq it carries. The client's `<a h/>` turns into a cumulative ack of the
 * user's inbox, so an inbox entry counts as delivered only once the client confirmed it; what
 * it never confirmed stays unacknowledged in the store and is delivered again (resumption, or
 * offline delivery at the next login), never bounced to its sender.
 */

/** The XEP-0198 namespace. */
export const NS_SM = 'urn:xmpp:sm:3';
/** Counters wrap at 2^32 (XEP-0198 §4). */
const WRAP = 2 ** 32;

/** A `h` attribute value: an unsigned 32-bit integer, or undefined. */
export function parseH(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d{1,10}$/.test(text)) return undefined;
  const h = Number(text);
  return h < WRAP ? h : undefined;
}

/** The client acknowledged more stanzas than were sent. */
export class HandledCountTooHigh extends Error {
  override name = 'HandledCountTooHigh';
  readonly sent: number;
  constructor(h: number, sent: number) {
    super(`h=${h} acknowledges more than the ${sent} stanzas sent`);
    this.sent = sent;
  }
}

/** Stream management of one session, from `<enable/>` on. */
export class StreamManagement {
  /** Resumption id (`previd`), when the session is resumable. */
  readonly id: string | undefined;
  /** Stanzas handled from the client, mod 2^32. */
  inbound = 0;
  /** Stanzas the client has acknowledged, mod 2^32. */
  #acked = 0;
  /** Sent and unacknowledged stanzas, oldest first; `seq` is the highest inbox seq they settle (0 = none). */
  readonly #unacked: Array<{ xml: string; seq: number }> = [];
  #bytes = 0;
  readonly #maxBytes: number;

  /**
   * `resumed`: the counts of a session resumed from another node's record: stanzas handled from
   * the client, and those the client acknowledged (everything sent before is settled).
   */
  constructor(id: string | undefined, maxBytes: number, resumed?: { readonly inbound: number; readonly acked: number }) {
    this.id = id;
    this.#maxBytes = maxBytes;
    if (resumed) {
      this.inbound = resumed.inbound;
      this.#acked = resumed.acked;
    }
  }

  /** Stanzas the client has acknowledged, mod 2^32. */
  get acked(): number {
    return this.#acked;
  }

  /** The unacknowledged stanzas that settle inbox entries: [the stanza's count mod 2^32, the highest inbox seq it settles]. */
  sentSeqs(): Array<[number, number]> {
    const out: Array<[number, number]> = [];
    this.#unacked.forEach((u, i) => {
      if (u.seq > 0) out.push([(this.#acked + i + 1) % WRAP, u.seq]);
    });
    return out;
  }

  /** A stanza from the client was handled. */
  handled(): void {
    this.inbound = (this.inbound + 1) % WRAP;
  }

  /** Stanzas sent so far, mod 2^32. */
  get outbound(): number {
    return (this.#acked + this.#unacked.length) % WRAP;
  }

  /** Unacknowledged stanzas. */
  get unacked(): number {
    return this.#unacked.length;
  }

  /**
   * Record a stanza sent (with the inbox seq it delivers, 0 for none). Returns false when the
   * unacknowledged stanzas now exceed the byte bound: the client is not acknowledging.
   */
  sent(xml: string, seq = 0): boolean {
    this.#unacked.push({ xml, seq });
    this.#bytes += xml.length;
    return this.#bytes <= this.#maxBytes;
  }

  /**
   * An inbox seq delivered without a stanza (an entry XMPP does not show): it is settled with
   * the last unacknowledged stanza, or at once when none waits (returns the seq to ack now).
   */
  seqOnly(seq: number): number | undefined {
    const last = this.#unacked.at(-1);
    if (!last) return seq;
    last.seq = Math.max(last.seq, seq);
    return undefined;
  }

  /**
   * The client's `h`: drop what it acknowledges. Returns the highest inbox seq now settled
   * (0 = none). Throws HandledCountTooHigh when `h` counts more than was sent.
   */
  acknowledge(h: number): number {
    const n = (h - this.#acked + WRAP) % WRAP;
    if (n > this.#unacked.length) throw new HandledCountTooHigh(h, this.outbound);
    let seq = 0;
    for (const item of this.#unacked.splice(0, n)) {
      seq = Math.max(seq, item.seq);
      this.#bytes -= item.xml.length;
    }
    this.#acked = h;
    return seq;
  }

  /** The unacknowledged stanzas, to send again on a resumed stream. */
  pending(): string[] {
    return this.#unacked.map((u) => u.xml);
  }
}
