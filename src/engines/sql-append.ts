/**
 * The append rule of the SQL IM stores, once: what an append checks and what it stores and
 * answers. CHANGE TOGETHER: three places apply it, step by step, and must stay in step with
 * this module and with each other:
 *  - `SqliteImStore.append` (store-sqlite.ts), every append of the single-node store;
 *  - `PostgresImStore.#appendOne` (store-postgres.ts), the careful path of the PostgreSQL store;
 *  - the PL/pgSQL function `herald_batch` (store-postgres-migrations.ts), its fast path, which
 *    takes plain appends only (no idempotency key read, no recall or edit) and raises HR001 for
 *    an unknown conversation and HR002 for an unknown recipient so the careful path reports them.
 *
 * The steps, in order:
 *  1. idempotency: an earlier message of the same sender with the same client id is the answer
 *     (`duplicateAppend`), nothing is written;
 *  2. a recall or edit checks its target (`checkEditTarget`), then blanks or rewrites it;
 *  3. the conversation's seq goes up by one (HERALD_ERR_IM_UNKNOWN_CONVERSATION when there is
 *     no such conversation) and the message is inserted with it, time = now;
 *  4. each distinct recipient's inbox head goes up by one (HERALD_ERR_IM_UNKNOWN_USER for an
 *     unknown user, which undoes the whole append) and an inbox row points at the message;
 *  5. the answer is the stored message (`appendedMessage`) and each recipient's inbox seq.
 */
import { HeraldError } from '../core/errors.js';
import type { AppendInput, AppendResult, StoredMessage } from '../core/im/store.js';
import type { MessageRow } from './im-rows.js';

/** Step 1: the answer to a retried append (same sender and client id): the original message, no inbox entries. */
export function duplicateAppend(message: StoredMessage): AppendResult {
  return { message, inbox: [], duplicate: true };
}

/** Whether the append changes an earlier message (step 2 applies). */
export function changesTarget(input: AppendInput): boolean {
  return input.kind === 'recall' || input.kind === 'edit';
}

/**
 * Step 2: a recall or edit may change only a live `message` of the same conversation, written
 * by the same sender; a recall only while `notBefore` allows it. Throws the HeraldError the
 * caller answers with.
 */
export function checkEditTarget(input: AppendInput, target: MessageRow | undefined): asserts target is MessageRow {
  if (!target || target.conversation !== input.conversation || target.kind !== 'message') throw new HeraldError('HERALD_ERR_IM_UNKNOWN_MESSAGE');
  if (target.sender !== input.sender) throw new HeraldError('HERALD_ERR_IM_NOT_ALLOWED', 'Only the author may recall or edit a message');
  if (target.recalled) throw new HeraldError('HERALD_ERR_IM_NOT_ALLOWED', 'The message was recalled');
  if (input.kind === 'recall' && input.notBefore !== undefined && target.time < input.notBefore) throw new HeraldError('HERALD_ERR_IM_RECALL_EXPIRED');
}

/** Step 3: the error for an append to a conversation that does not exist. */
export function unknownConversation(): HeraldError {
  return new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION');
}

/** Step 4: the recipients whose inboxes get the message, each once, in the order given. */
export function recipientsOf(input: AppendInput): Set<string> {
  return new Set(input.recipients);
}

/** Step 4: the error for a recipient that is not a user (the append is undone). */
export function unknownRecipient(user: string): HeraldError {
  return new HeraldError('HERALD_ERR_IM_UNKNOWN_USER', `Unknown user: ${user}`);
}

/** Step 5: the message as stored (and answered) for an append given `id`, `seq` and `now`. */
export function appendedMessage(input: AppendInput, id: string, seq: number, now: number): StoredMessage {
  return {
    id,
    conversation: input.conversation,
    seq,
    sender: input.sender,
    kind: input.kind,
    payload: input.payload,
    ...(input.target !== undefined ? { target: input.target } : {}),
    time: now,
  };
}
