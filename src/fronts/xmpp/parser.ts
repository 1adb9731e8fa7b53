/**
 * The guarded XML parser of the XMPP front, on `saxes` (a strict, non-validating, streaming
 * XML 1.0 parser that never loads a DTD or an external entity).
 *
 * Guarantees, per RFC 6120 §11.1 (restricted XML) and Herald's bounds on remote input:
 * - a DOCTYPE, a comment, a processing instruction or an entity reference other than the five
 *   predefined ones (and character references) ends the stream with `restricted-xml`; entities
 *   are never expanded, so billion-laughs and external entities have nothing to work with;
 * - a stanza (or the text between two stanzas) longer than `maxStanzaSize` characters, an
 *   element nested deeper than `maxDepth` or carrying more than `maxAttributes` attributes
 *   ends the stream with `policy-violation`, before more than one input chunk past the limit
 *   is held;
 * - anything else that is not well-formed, namespace-well-formed XML ends it with
 *   `not-well-formed`;
 * - no input makes `write` throw: every failure is returned as a `ParseError`, after which the
 *   parser accepts nothing more;
 * - after a top-level element the caller marks as a boundary (one after which the stream may
 *   restart, e.g. SASL `<auth/>`), what the same chunk goes on with is returned apart, both as
 *   the rest of the text (for a parser of the new stream) and as this parser's events and error
 *   (for when the stream goes on).
 */
import { type SaxesAttributeNS, SaxesParser, type SaxesTagNS } from 'saxes';
import { NS, XmlElement } from './xml.js';

/** Bounds on one stream's XML. */
export interface XmlLimits {
  /** Largest stanza, and largest run of text between stanzas, in characters. */
  readonly maxStanzaSize: number;
  /** Deepest element nesting inside a stanza (the stanza itself is depth 1). */
  readonly maxDepth: number;
  /** Most attributes (namespace declarations included) on one element. */
  readonly maxAttributes: number;
}

/** Stream error conditions the parser reports (RFC 6120 §4.9.3). */
export type ParseCondition = 'not-well-formed' | 'restricted-xml' | 'policy-violation';

/** Why the parser stopped. */
export class ParseError extends Error {
  override name = 'ParseError';
  readonly condition: ParseCondition;
  constructor(condition: ParseCondition, message: string) {
    super(message);
    this.condition = condition;
  }
}

/** What the parser found, in order. */
export type XmlEvent =
  /** Stream mode: the `<stream:stream>` start tag (its children are not filled in). */
  | { readonly type: 'open'; readonly element: XmlElement }
  /** A complete top-level element: a stanza or a stream-level element (`<auth>`, `<open/>`…). */
  | { readonly type: 'element'; readonly element: XmlElement }
  /** Stream mode: `</stream:stream>`. */
  | { readonly type: 'close' };

/** Result of feeding input. */
export interface ParseResult {
  readonly events: XmlEvent[];
  /** Set when the input broke a rule; later input is refused. */
  readonly error?: ParseError;
  /**
   * The chunk went on after a boundary element (the last of `events`): its text after the
   * element, and what this parser made of it (only valid if the stream does not restart).
   */
  readonly after?: { readonly rest: string; readonly events: XmlEvent[]; readonly error?: ParseError };
}

/**
 * One XML document fed in chunks. In `stream` mode the root is `<stream:stream>` (TCP, and the
 * pre-RFC 7395 WebSocket framing) and its children are the stanzas; in `document` mode (one
 * RFC 7395 WebSocket message) the root element itself is the one element returned.
 */
export class XmlParser {
  readonly #limits: XmlLimits;
  readonly #stanzaDepth: number;
  readonly #parser: SaxesParser<{ xmlns: true }>;
  readonly #stack: XmlElement[] = [];
  #events: XmlEvent[] = [];
  #error: ParseError | undefined;
  /** Input position where the current stanza (or the text before it) began. */
  #mark = 0;
  readonly #boundary: ((e: XmlElement) => boolean) | undefined;
  /** Characters written so far. */
  #fed = 0;
  /** In the chunk being written: the position after the first boundary element and the events before it. */
  #cut: { readonly at: number; readonly events: number } | undefined;

  /** `boundary`: top-level elements after which the stream may restart (see ParseResult.after). */
  constructor(limits: XmlLimits, mode: 'stream' | 'document', boundary?: (e: XmlElement) => boolean) {
    this.#limits = limits;
    this.#boundary = boundary;
    this.#stanzaDepth = mode === 'stream' ? 1 : 0;
    const p = (this.#parser = new SaxesParser({ xmlns: true }));
    p.on('doctype', () => fail('restricted-xml', 'DOCTYPE is not allowed'));
    p.on('comment', () => fail('restricted-xml', 'comments are not allowed'));
    p.on('processinginstruction', () => fail('restricted-xml', 'processing instructions are not allowed'));
    p.on('error', (err) => fail(/undefined entity|entity name|doctype/i.test(err.message) ? 'restricted-xml' : 'not-well-formed', err.message));
    p.on('opentag', (tag) => this.#open(tag));
    p.on('closetag', () => this.#close());
    p.on('text', (text) => this.#text(text));
    p.on('cdata', (text) => this.#text(text));
  }

  /** Feed the next chunk. After an error, returns that error again and parses nothing. */
  write(chunk: string): ParseResult {
    if (this.#error) return { events: [], error: this.#error };
    // During a write saxes' position is the offset in everything written so far (not so between writes).
    const start = this.#fed;
    this.#fed += chunk.length;
    this.#cut = undefined;
    try {
      this.#parser.write(chunk);
      this.#checkSize();
    } catch (err) {
      this.#error = err instanceof ParseError ? err : new ParseError('not-well-formed', 'unparseable input');
    }
    // (Set by the handlers during write: the compiler cannot see it.)
    const cut = this.#cut as { readonly at: number; readonly events: number } | undefined;
    this.#cut = undefined;
    const rest = cut === undefined ? '' : chunk.slice(cut.at - start);
    if (cut === undefined || (rest === '' && cut.events === this.#events.length && !this.#error)) return this.#take();
    const events = this.#events;
    this.#events = [];
    const after = { rest, events: events.slice(cut.events), ...(this.#error ? { error: this.#error } : {}) };
    // An error after the boundary is the old stream's only: until the caller knows, it stands for the rest.
    return { events: events.slice(0, cut.events), after };
  }

  /** Document mode: the input is complete; an unfinished document is an error. */
  end(): ParseResult {
    if (this.#error) return { events: [], error: this.#error };
    try {
      this.#parser.close();
    } catch (err) {
      this.#error = err instanceof ParseError ? err : new ParseError('not-well-formed', 'unparseable input');
    }
    return this.#take();
  }

  #take(): ParseResult {
    const events = this.#events;
    this.#events = [];
    return this.#error ? { events, error: this.#error } : { events };
  }

  #checkSize(): void {
    if (this.#parser.position - this.#mark > this.#limits.maxStanzaSize) {
      fail('policy-violation', `stanza larger than ${this.#limits.maxStanzaSize} characters`);
    }
  }

  #open(tag: SaxesTagNS): void {
    const depth = this.#stack.length;
    if (depth - this.#stanzaDepth + 1 > this.#limits.maxDepth) fail('policy-violation', `elements nested deeper than ${this.#limits.maxDepth}`);
    const attrs: Record<string, string> = Object.create(null) as Record<string, string>;
    let count = 0;
    for (const name in tag.attributes) {
      if (++count > this.#limits.maxAttributes) fail('policy-violation', `more than ${this.#limits.maxAttributes} attributes on one element`);
      const a = tag.attributes[name] as SaxesAttributeNS;
      if (a.prefix !== 'xmlns' && name !== 'xmlns') attrs[name] = a.value;
    }
    const element = new XmlElement(tag.name, tag.local, tag.uri || NS.CLIENT, attrs);
    if (depth === 0 && this.#stanzaDepth === 1) {
      this.#events.push({ type: 'open', element });
      this.#mark = this.#parser.position;
    } else if (depth > this.#stanzaDepth) {
      this.#stack.at(-1)!.children.push(element);
    }
    this.#stack.push(element);
    if (!tag.isSelfClosing) this.#checkSize();
  }

  #close(): void {
    const element = this.#stack.pop()!;
    const depth = this.#stack.length;
    if (depth === this.#stanzaDepth) {
      this.#checkSize();
      this.#mark = this.#parser.position;
      this.#events.push({ type: 'element', element });
      if (this.#cut === undefined && this.#boundary?.(element)) this.#cut = { at: this.#parser.position, events: this.#events.length };
    } else if (depth === 0) {
      this.#events.push({ type: 'close' });
    }
  }

  #text(text: string): void {
    const parent = this.#stack.at(-1);
    // Text between stanzas (whitespace keep-alives) is dropped; its size was bounded by #checkSize.
    if (!parent || this.#stack.length <= this.#stanzaDepth) return;
    const last = parent.children.at(-1);
    if (typeof last === 'string') parent.children[parent.children.length - 1] = last + text;
    else parent.children.push(text);
  }
}

function fail(condition: ParseCondition, message: string): never {
  throw new ParseError(condition, message);
}

/** Parse one complete RFC 7395 WebSocket message: exactly one element. */
export function parseDocument(text: string, limits: XmlLimits): { element?: XmlElement; error?: ParseError } {
  const parser = new XmlParser(limits, 'document');
  const first = parser.write(text);
  if (first.error) return { error: first.error };
  const last = parser.end();
  if (last.error) return { error: last.error };
  const found = [...first.events, ...last.events];
  const ev = found[0];
  return ev?.type === 'element' ? { element: ev.element } : { error: new ParseError('not-well-formed', 'expected one element') };
}
