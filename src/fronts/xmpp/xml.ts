/**
 * XML for the XMPP front: the element tree the parser builds from what clients send, and the
 * string builder for what the server sends (escaped; built once, written as text).
 */

/** Namespaces the front speaks. */
export const NS = {
  CLIENT: 'jabber:client',
  STREAM: 'http://etherx.jabber.org/streams',
  FRAMING: 'urn:ietf:params:xml:ns:xmpp-framing',
  STREAMS: 'urn:ietf:params:xml:ns:xmpp-streams',
  STANZAS: 'urn:ietf:params:xml:ns:xmpp-stanzas',
  SASL: 'urn:ietf:params:xml:ns:xmpp-sasl',
  TLS: 'urn:ietf:params:xml:ns:xmpp-tls',
  BIND: 'urn:ietf:params:xml:ns:xmpp-bind',
  SESSION: 'urn:ietf:params:xml:ns:xmpp-session',
  ROSTER: 'jabber:iq:roster',
  IQ_AUTH: 'jabber:iq:auth',
  IQ_AUTH_FEATURE: 'http://jabber.org/features/iq-auth',
  VERSION: 'jabber:iq:version',
  PING: 'urn:xmpp:ping',
  DISCO_INFO: 'http://jabber.org/protocol/disco#info',
  DISCO_ITEMS: 'http://jabber.org/protocol/disco#items',
  SID: 'urn:xmpp:sid:0',
  DELAY: 'urn:xmpp:delay',
  RECEIPTS: 'urn:xmpp:receipts',
  CHAT_STATES: 'http://jabber.org/protocol/chatstates',
  MARKERS: 'urn:xmpp:chat-markers:0',
  CORRECT: 'urn:xmpp:message-correct:0',
  RETRACT: 'urn:xmpp:message-retract:1',
  RETRACT_0: 'urn:xmpp:message-retract:0',
  FASTEN: 'urn:xmpp:fasten:0',
  FALLBACK: 'urn:xmpp:fallback:0',
  HINTS: 'urn:xmpp:hints',
  CARBONS: 'urn:xmpp:carbons:2',
  FORWARD: 'urn:xmpp:forward:0',
  MAM: 'urn:xmpp:mam:2',
  RSM: 'http://jabber.org/protocol/rsm',
  DATA: 'jabber:x:data',
} as const;

/** An element received from a client: qualified name, resolved namespace, attributes and children. */
export class XmlElement {
  /** Name as written, with its prefix (`stream:features`). */
  readonly name: string;
  /** Local name (`features`). */
  readonly local: string;
  /** Resolved namespace URI (the content namespace when the client declared none). */
  readonly ns: string;
  /** Attributes by qualified name, namespace declarations excluded. */
  readonly attrs: Readonly<Record<string, string>>;
  readonly children: Array<XmlElement | string> = [];

  constructor(name: string, local: string, ns: string, attrs: Record<string, string>) {
    this.name = name;
    this.local = local;
    this.ns = ns;
    this.attrs = attrs;
  }

  /** An attribute value, or undefined. */
  attr(name: string): string | undefined {
    return this.attrs[name];
  }

  /** The first child element with this local name (and namespace, when given). */
  child(local: string, ns?: string): XmlElement | undefined {
    for (const c of this.children) if (typeof c !== 'string' && c.local === local && (ns === undefined || c.ns === ns)) return c;
    return undefined;
  }

  /** Child elements (text nodes skipped). */
  elements(): XmlElement[] {
    return this.children.filter((c): c is XmlElement => typeof c !== 'string');
  }

  /** Concatenated text children (not of descendants). */
  text(): string {
    let out = '';
    for (const c of this.children) if (typeof c === 'string') out += c;
    return out;
  }

  /** The text of the first child with this local name and namespace, or undefined. */
  childText(local: string, ns?: string): string | undefined {
    return this.child(local, ns)?.text();
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

/**
 * What `esc` rewrites: the five predefined entities, tab and line breaks (as character
 * references, so an XML reader's line-end and attribute-value normalization keeps them), and any
 * character XML 1.0 does not allow (C0 controls, lone surrogates, U+FFFE, U+FFFF).
 */
const ESCAPE_RE = /[&<>"'\t\n\r]|[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

/**
 * Escape text or an attribute value. Characters XML cannot carry become U+FFFD: text from other
 * fronts (a native client's message, a publication) may hold any character, and one control
 * character would otherwise make the whole stream not-well-formed for the XMPP client.
 */
export function esc(s: string): string {
  return s.replace(ESCAPE_RE, (c) => ESCAPES[c] ?? '\uFFFD');
}

/**
 * Serialize an element: `attrs` values are escaped (undefined ones left out), `children` are
 * already serialized XML (use `esc` for text). No children = self-closing.
 */
export function el(
  name: string,
  attrs: Readonly<Record<string, string | number | undefined>> = {},
  children: ReadonlyArray<string | undefined | false> = [],
): string {
  let out = `<${name}`;
  for (const k in attrs) {
    const v = attrs[k];
    if (v !== undefined) out += ` ${k}="${esc(String(v))}"`;
  }
  const inner = children.filter((c): c is string => typeof c === 'string' && c !== '').join('');
  return inner === '' ? `${out}/>` : `${out}>${inner}</${name}>`;
}
