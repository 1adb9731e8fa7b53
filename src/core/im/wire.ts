/**
 * JSON wire forms of IM entities, built as strings so that stored JSON payloads are embedded
 * as they are, never parsed and re-serialised.
 */
import type { StoredMessage } from './store.js';

/**
 * A message: `{"id","conversation","seq","from","kind","time","data"[,"target"][,"editedAt"][,"recalled"]}`.
 * `seq` is the conversation sequence.
 */
export function messageJson(m: StoredMessage): string {
  const target = m.target === undefined ? '' : `,"target":${JSON.stringify(m.target)}`;
  const edited = m.editedAt === undefined ? '' : `,"editedAt":${m.editedAt}`;
  const recalled = m.recalled ? ',"recalled":true' : '';
  return (
    `{"id":"${m.id}","conversation":${JSON.stringify(m.conversation)},"seq":${m.seq},"from":${JSON.stringify(m.sender)},` +
    `"kind":"${m.kind}","time":${m.time},"data":${m.payload}${target}${edited}${recalled}}`
  );
}

/** The inbox push of a message: `{"type":"message","seq":<inbox seq>,"message":{…}}` (seq absent for large groups). */
export function messageEventJson(m: StoredMessage, inboxSeq: number | undefined, redelivered = false): string {
  const seq = inboxSeq === undefined ? '' : `"seq":${inboxSeq},`;
  return `{"type":"message",${seq}${redelivered ? '"redelivered":true,' : ''}"message":${messageJson(m)}}`;
}

const SEQ_PREFIX = '{"type":"message","seq":';

/** The inbox seq of a message event (messageEventJson writes it first), read without parsing the payload. */
export function inboxSeqOf(payload: Buffer): number | undefined {
  const head = payload.toString('latin1', 0, SEQ_PREFIX.length + 16);
  if (!head.startsWith(SEQ_PREFIX)) return undefined;
  const seq = Number.parseInt(head.slice(SEQ_PREFIX.length), 10);
  return Number.isSafeInteger(seq) && seq > 0 ? seq : undefined;
}
