/**
 * What the chat side of a bound XMPP session (chat-session.ts, muc.ts) needs from the session:
 * the core and IM, who the session is, and how to write stanzas and settle inbox entries.
 */
import type { HeraldCore } from '../../core/core.js';
import type { ImService } from '../../core/im/service.js';

/** What the chat needs from its session. */
export interface ChatContext {
  readonly core: HeraldCore;
  readonly im: ImService;
  readonly domain: string;
  readonly user: string;
  /** The bound full JID. */
  readonly jid: string;
  readonly open: boolean;
  /** Write a stanza that settles no inbox entry. */
  write(xml: string): void;
  /** Write an inbox entry's stanza (or none) and have its inbox seq acknowledged once the client has it. */
  deliver(xml: string | undefined, seq: number): void;
}
