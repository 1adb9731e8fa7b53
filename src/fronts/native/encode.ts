/**
 * Encoders for publications in the native protocol. Each encoder is a pure function of the
 * publication so `Outgoing.encoded()` runs it once per node for all subscribers.
 */
import type { SubscribeResult } from '../../core/core.js';
import { BINARY_CONTENT_TYPE, JSON_CONTENT_TYPE, type Publication } from '../../core/publication.js';
import { parsePeerJson } from '../../protocol/json.js';
import { formatPosition, type StreamPosition } from '../../protocol/position.js';

/**
 * The JSON text of a JSON-labelled payload as it may be embedded in a frame, memoised per
 * publication; null when the bytes are not JSON.
 */
const jsonText = new WeakMap<Publication, string | null>();

/** Raw CR and LF bytes; in valid JSON they can only be whitespace between tokens. */
const RAW_LINE_BREAKS = /[\r\n]/g;

/**
 * The payload's JSON text, or null when it is not JSON. Fronts that take raw bodies (Nchan) keep
 * the publisher's content type, so `application/json` does not prove the bytes are JSON;
 * embedding them unchecked would corrupt the frame for every subscriber. Line breaks (whitespace
 * in valid JSON) become spaces: the SSE and NDJSON transports frame by lines, so a raw CR or LF
 * would let a publisher cut the stream of every subscriber. One parse per publication.
 */
function embeddableJson(pub: Publication): string | null {
  let text = jsonText.get(pub);
  if (text === undefined) {
    text = pub.payload.toString('utf8');
    // Too deep counts as not JSON: it is embedded as a string, so replies that re-serialize it
    // (history) cannot overflow the stack.
    text = parsePeerJson(text).ok ? text.replace(RAW_LINE_BREAKS, ' ') : null;
    jsonText.set(pub, text);
  }
  return text;
}

/** The JSON text of the `data` field (and `encoding`/`contentType` fields when not JSON). */
function dataFields(pub: Publication): string {
  const json = pub.contentType === JSON_CONTENT_TYPE ? embeddableJson(pub) : null;
  if (json !== null) return `"data":${json}`;
  const ct = pub.contentType === undefined ? '' : `,"contentType":${JSON.stringify(pub.contentType)}`;
  if (pub.contentType === BINARY_CONTENT_TYPE) return `"data":"${pub.payload.toString('base64')}","encoding":"base64"${ct}`;
  return `"data":${JSON.stringify(pub.payload.toString('utf8'))}${ct}`;
}

/** The `pub` push frame: `{"type":"pub","channel","epoch","offset","time","data",…}`. */
export function pubFrame(pub: Publication): string {
  const event = pub.event === undefined ? '' : `,"event":${JSON.stringify(pub.event)}`;
  const info = pub.info === undefined ? '' : `,"info":${JSON.stringify(pub.info)}`;
  return `{"type":"pub","channel":${JSON.stringify(pub.channel)},"epoch":"${pub.epoch}","offset":${pub.offset},"time":${pub.time},${dataFields(pub)}${event}${info}}`;
}

/** The `subscribed` push for HTTP transports: where a channel's stream starts. */
export function subscribedFrame(channel: string, position: StreamPosition, recovered: boolean): string {
  return JSON.stringify({ type: 'subscribed', channel, position: formatPosition(position), epoch: position.epoch, offset: position.offset, recovered });
}

/**
 * The part of a subscription's starting history that fits `budget` bytes (each publication's
 * frame plus a separator), so a reader is not cut as a slow consumer for the size of its own
 * subscribe answer (`limits.maxOutboundBytes`). `alwaysOne`: the first publication is kept
 * whatever its size. A resume (`resume`: the client gave `since`) keeps the oldest publications
 * and, when cut, is reported as not recovered (the client reads the rest with `history`); a
 * `last` read keeps the newest. Returns the result and the bytes it carries.
 */
export function historyWithin(result: SubscribeResult, resume: boolean, budget: number, alwaysOne: boolean): { result: SubscribeResult; bytes: number } {
  const pubs = result.publications;
  const order = resume ? pubs : [...pubs].reverse();
  let bytes = 0;
  let kept = 0;
  for (const pub of order) {
    const size = Buffer.byteLength(pubFrame(pub)) + 1;
    if (bytes + size > budget && !(alwaysOne && kept === 0)) break;
    bytes += size;
    kept++;
  }
  if (kept === pubs.length) return { result, bytes };
  const publications = resume ? pubs.slice(0, kept) : pubs.slice(pubs.length - kept);
  return { result: { ...result, publications, recovered: resume ? false : result.recovered }, bytes };
}
