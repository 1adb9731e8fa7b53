/**
 * The messages one XMPP session sent, most recent `MAX_SENT` only: a client refers to its own
 * messages by the stanza ids it chose (XEP-0308 corrections, XEP-0424 retractions, XEP-0184
 * receipts, XEP-0333 markers on them), Herald by the server ids it assigned. The log translates
 * between the two, tells the session's own messages from those its user sent elsewhere
 * (XEP-0280 carbons), and keeps the receipt requests until the peer's delivery receipt.
 */

/** Most sends remembered per session (older ones are referred to by their server ids). */
export const MAX_SENT = 512;

/** One message the session sent. */
export interface SentMessage {
  /** Server id. */
  readonly id: string;
  /** The stanza id the client gave it, if any. */
  readonly stanzaId: string | undefined;
  readonly conversation: string;
  /** Conversation seq. */
  readonly seq: number;
  /** The client asked for a delivery receipt (XEP-0184) and has not had it yet. */
  receipt: boolean;
}

/** The bounded log of one session's sends. */
export class SentLog {
  readonly #byId = new Map<string, SentMessage>();
  readonly #byStanzaId = new Map<string, string>();

  /** Record a send (its ack came back). */
  add(m: SentMessage): void {
    if (this.#byId.size >= MAX_SENT) {
      const oldest = this.#byId.values().next().value!;
      this.#byId.delete(oldest.id);
      if (oldest.stanzaId !== undefined && this.#byStanzaId.get(oldest.stanzaId) === oldest.id) this.#byStanzaId.delete(oldest.stanzaId);
    }
    this.#byId.set(m.id, m);
    if (m.stanzaId !== undefined) this.#byStanzaId.set(m.stanzaId, m.id);
  }

  /** Whether this session sent the message with this server id. */
  has(id: string): boolean {
    return this.#byId.has(id);
  }

  /** The server id of a message the client refers to: by its stanza id when this session sent it, else the reference itself. */
  serverId(ref: string): string {
    return this.#byStanzaId.get(ref) ?? ref;
  }

  /** The id the client knows a message by: its stanza id when this session sent it, else the server id. */
  clientId(id: string): string {
    return this.#byId.get(id)?.stanzaId ?? id;
  }

  /** The sends of `conversation` up to `seq` whose receipt is due, once each. */
  receiptsDue(conversation: string, seq: number): SentMessage[] {
    const due: SentMessage[] = [];
    for (const m of this.#byId.values()) {
      if (m.receipt && m.conversation === conversation && m.seq <= seq) {
        m.receipt = false;
        due.push(m);
      }
    }
    return due;
  }
}
