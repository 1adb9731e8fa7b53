/**
 * What a bound XMPP session sends, and how it settles the user's inbox: with stream management
 * (XEP-0198, from `<enable/>` on) every stanza is counted and kept until the client acknowledges
 * it, and inbox entries are acknowledged to the IM only then; without it an entry counts as
 * delivered once written.
 *
 * Guarantees: at most one `<r/>` and one IM ack per turn of the event loop; the IM ack is
 * cumulative (the highest inbox seq settled); an unacknowledged queue past
 * `limits.maxOutboundBytes` ends the session (`unmanageable`) rather than growing.
 */
import { randomBytes } from 'node:crypto';
import type { HeraldCore } from '../../core/core.js';
import type { ImService } from '../../core/im/service.js';
import { StreamError } from './errors.js';
import { HandledCountTooHigh, NS_SM, parseH, StreamManagement } from './stream-management.js';
import { el, NS, type XmlElement } from './xml.js';

/** What the outbox needs from its session. */
export interface OutboxContext {
  readonly core: HeraldCore;
  readonly im: ImService;
  /** How long a resumable session waits for its client, ms (advertised as `max`). */
  readonly resumeTimeoutMs: number;
  /** The connection dropped and the session waits for a resumption. */
  readonly detached: boolean;
  /** The authenticated user. */
  readonly user: string;
  /** Write to the connection (dropped while detached or closed). */
  write(xml: string): void;
  /** A resumable stream was enabled with this id. */
  resumable(id: string): void;
  /** The client lets unacknowledged stanzas pile up past the bound. */
  unmanageable(): void;
  /** The stream management state changed (a stanza sent, an acknowledgement). */
  changed(): void;
}

/** The output side of one bound session. */
export class XmppOutbox {
  readonly #ctx: OutboxContext;
  /** XEP-0198 state, from `<enable/>` on. */
  #sm: StreamManagement | undefined;
  /** Highest inbox seq to acknowledge to the IM, and whether an ack is on its way. */
  #ackDue = 0;
  #ackScheduled = false;
  #ackRequested = false;

  constructor(ctx: OutboxContext) {
    this.#ctx = ctx;
  }

  /** Stream management state, once enabled. */
  get sm(): StreamManagement | undefined {
    return this.#sm;
  }

  /** Highest inbox seq settled (acknowledged to the IM, or about to be). */
  get settled(): number {
    return this.#ackDue;
  }

  /**
   * Stream management of a session resumed from another node's record: `inbound` stanzas
   * handled, `acked` acknowledged by the client, the inbox settled up to `settled`.
   */
  resumed(id: string, inbound: number, acked: number, settled: number): void {
    this.#sm = new StreamManagement(id, this.#ctx.core.config.limits.maxOutboundBytes, { inbound, acked });
    this.#ackInbox(settled);
  }

  /** Write a stanza; with stream management it is counted and kept until the client acknowledges it. */
  stanza(xml: string, seq = 0): void {
    const sm = this.#sm;
    if (sm) {
      if (!sm.sent(xml, seq)) {
        this.#ctx.unmanageable();
        return;
      }
      this.#ctx.changed();
      this.requestAck();
    }
    this.#ctx.write(xml);
  }

  /** An inbox entry's stanza (or none): its seq is acknowledged to the IM once the client has it. */
  deliver(xml: string | undefined, seq: number): void {
    const sm = this.#sm;
    if (!sm) {
      if (xml !== undefined) this.#ctx.write(xml);
      this.#ackInbox(seq);
    } else if (xml !== undefined) {
      this.stanza(xml, seq);
    } else {
      const now = sm.seqOnly(seq);
      if (now !== undefined) this.#ackInbox(now);
      this.#ctx.changed();
    }
  }

  /** One `<r/>` per turn of the event loop after stanzas were sent. */
  requestAck(): void {
    if (this.#ackRequested || this.#ctx.detached) return;
    this.#ackRequested = true;
    setImmediate(() => {
      this.#ackRequested = false;
      this.#ctx.write(el('r', { xmlns: NS_SM }));
    });
  }

  /** `<enable/>`, `<r/>` or `<a/>` from the client of a bound stream. */
  element(e: XmlElement): void {
    const sm = this.#sm;
    switch (e.local) {
      case 'enable': {
        if (sm) {
          this.#ctx.write(el('failed', { xmlns: NS_SM }, [el('unexpected-request', { xmlns: NS.STANZAS })]));
          return;
        }
        const resume = e.attr('resume') === 'true' || e.attr('resume') === '1';
        const id = resume ? `${this.#ctx.core.nodeId.slice(0, 8)}.${randomBytes(12).toString('base64url')}` : undefined;
        this.#sm = new StreamManagement(id, this.#ctx.core.config.limits.maxOutboundBytes);
        if (id !== undefined) this.#ctx.resumable(id);
        const max = id === undefined ? undefined : Math.ceil(this.#ctx.resumeTimeoutMs / 1000);
        this.#ctx.write(el('enabled', { xmlns: NS_SM, id, resume: id === undefined ? undefined : 'true', max }));
        return;
      }
      case 'r':
        if (!sm) throw new StreamError('unsupported-stanza-type', 'Stream management is not enabled');
        this.#ctx.write(el('a', { xmlns: NS_SM, h: sm.inbound }));
        return;
      case 'a': {
        if (!sm) throw new StreamError('unsupported-stanza-type', 'Stream management is not enabled');
        const h = parseH(e.attr('h'));
        if (h === undefined) throw new StreamError('bad-format', 'h must be an unsigned 32-bit integer');
        this.acknowledge(h);
        return;
      }
      default:
        throw new StreamError('unsupported-stanza-type', `Unsupported stream management element: ${e.local.slice(0, 32)}`);
    }
  }

  /** The client's `h` (an `<a/>` or a `<resume/>`): settle what it acknowledges. */
  acknowledge(h: number): void {
    let seq: number;
    try {
      seq = this.#sm!.acknowledge(h);
    } catch (err) {
      if (err instanceof HandledCountTooHigh) throw new StreamError('undefined-condition', err.message);
      throw err;
    }
    if (seq > 0) this.#ackInbox(seq);
    this.#ctx.changed();
  }

  /** Cumulative inbox ack to the IM, one per turn of the event loop. */
  #ackInbox(seq: number): void {
    if (seq <= this.#ackDue) return;
    this.#ackDue = seq;
    if (this.#ackScheduled) return;
    this.#ackScheduled = true;
    setImmediate(() => {
      this.#ackScheduled = false;
      const { core, im, user } = this.#ctx;
      im.ack(user, this.#ackDue).catch((err: unknown) => core.logger.warn({ err: String(err) }, 'xmpp inbox ack failed'));
    });
  }
}
