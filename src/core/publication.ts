/**
 * Publications: what a channel carries. The payload is kept as bytes with an optional content
 * type so that raw bodies (Nchan, text) and JSON data travel the same way; JSON is recognised by
 * `contentType === 'application/json'` and embedded as is in JSON frames, never re-parsed.
 */

/** Content type of JSON payloads. */
export const JSON_CONTENT_TYPE = 'application/json';
/** Content type of binary payloads: sent base64 in JSON frames, as binary WebSocket frames by Nchan. */
export const BINARY_CONTENT_TYPE = 'application/octet-stream';

/** Who published, as seen by subscribers (client publications only). */
export interface ClientInfo {
  readonly user?: string;
  readonly client: string;
}

/** A publication before it has a position. */
export interface PublicationInput {
  /** The message body. */
  readonly payload: Buffer;
  /** MIME type of the payload; undefined = unspecified. */
  readonly contentType?: string;
  /** Optional event name (SSE `event:` line, Nchan `X-EventSource-Event`). */
  readonly event?: string;
  /** Publisher, when a client published. */
  readonly info?: ClientInfo;
}

/** A publication with its place in the channel's history. */
export interface Publication extends PublicationInput {
  readonly channel: string;
  /** History epoch the offset belongs to. */
  readonly epoch: string;
  /** 1-based offset within the epoch; strictly increasing per channel. */
  readonly offset: number;
  /** Server time of publication, ms since the Unix epoch. */
  readonly time: number;
}

/** Build a JSON publication input from any JSON-serialisable value. */
export function jsonInput(data: unknown, extra?: Omit<PublicationInput, 'payload' | 'contentType'>): PublicationInput {
  return { ...extra, payload: Buffer.from(JSON.stringify(data)), contentType: JSON_CONTENT_TYPE };
}

/**
 * One publication on its way to many local subscribers. Encodings are memoised per encoder
 * function, so a frame is serialised once per node and the same bytes are written to every
 * subscriber that speaks the same protocol ("encode once, write many").
 */
export class Outgoing {
  readonly pub: Publication;
  #cache: Map<(pub: Publication) => unknown, unknown> | undefined;

  constructor(pub: Publication) {
    this.pub = pub;
  }

  /** The result of `encoder(pub)`, computed at most once for this publication. */
  encoded<T>(encoder: (pub: Publication) => T): T {
    this.#cache ??= new Map();
    let v = this.#cache.get(encoder) as T | undefined;
    if (v === undefined) {
      v = encoder(this.pub);
      this.#cache.set(encoder, v);
    }
    return v;
  }
}
