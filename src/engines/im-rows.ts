/**
 * What the SQL IM stores (SQLite and PostgreSQL) share: message ids, and the mapping of their
 * message and conversation rows (same columns in both schemas) to the store interface's records.
 */
import { randomBytes } from 'node:crypto';
import type { ConversationKind, ConversationRecord, MessageKind, StoredMessage } from '../core/im/store.js';

/** A row of `im_messages` (`recalled` is 0/1 in SQLite, a boolean in PostgreSQL). */
export interface MessageRow {
  id: string;
  conversation: string;
  seq: number;
  sender: string;
  kind: string;
  payload: string;
  target: string | null;
  time: number;
  edited_at: number | null;
  recalled: number | boolean;
}

/** A row of `im_conversations`. */
export interface ConvRow {
  id: string;
  kind: string;
  title: string | null;
  created_at: number;
  seq: number;
  member_count: number;
}

/** Random per process, so ids from different processes (or restarts) never collide. */
const ID_PREFIX = randomBytes(4).toString('hex');
let idCounter = 0;

/** A new message id: time-ordered (ms, base 36), then the process prefix and a counter. */
export function newMessageId(now = Date.now()): string {
  idCounter = (idCounter + 1) % 0x100000000;
  return `${now.toString(36)}${ID_PREFIX}${idCounter.toString(36)}`;
}

export function toMessage(r: MessageRow): StoredMessage {
  return {
    id: r.id,
    conversation: r.conversation,
    seq: r.seq,
    sender: r.sender,
    kind: r.kind as MessageKind,
    payload: r.payload,
    ...(r.target !== null ? { target: r.target } : {}),
    time: r.time,
    ...(r.edited_at !== null ? { editedAt: r.edited_at } : {}),
    ...(r.recalled ? { recalled: true } : {}),
  };
}

export function toConv(r: ConvRow): ConversationRecord {
  return {
    id: r.id,
    kind: r.kind as ConversationKind,
    ...(r.title !== null ? { title: r.title } : {}),
    createdAt: r.created_at,
    seq: r.seq,
    memberCount: r.member_count,
  };
}
