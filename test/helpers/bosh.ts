/**
 * A raw BOSH client for tests (XEP-0124/0206 by hand over fetch): it creates a session, numbers
 * its requests, and returns each response's text, so that tests can send what a well-behaved
 * client never would (repeated or skipped rids, another sid, malformed bodies).
 */
import type { HeraldServer } from '../../src/index.js';

export const NS_HTTPBIND = 'http://jabber.org/protocol/httpbind';

/** URL of the BOSH endpoint. */
export function boshUrl(server: HeraldServer): string {
  return `${server.url()}/http-bind`;
}

/** POST a body; resolves with the HTTP status and the response text. */
export async function boshPost(server: HeraldServer, body: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(boshUrl(server), { method: 'POST', headers: { 'content-type': 'text/xml; charset=utf-8', ...headers }, body });
  return { status: res.status, text: await res.text() };
}

/** An attribute of the response's `<body>`. */
export function bodyAttr(text: string, name: string): string | undefined {
  const open = /^<body\b[^>]*>/.exec(text)?.[0] ?? '';
  return new RegExp(`\\s${name}="([^"]*)"`).exec(open)?.[1];
}

/** A BOSH session driven by hand. */
export class RawBosh {
  readonly server: HeraldServer;
  sid = '';
  rid: number;
  /** The creation response. */
  created = '';

  constructor(server: HeraldServer, rid = 1000 + Math.floor(Math.random() * 1e6)) {
    this.server = server;
    this.rid = rid;
  }

  /** Create the session (`extra`: more attributes of the creation `<body>`, e.g. `hold="0"`). */
  async create(extra = "wait='60' hold='1'"): Promise<string> {
    const { text } = await boshPost(
      this.server,
      `<body rid='${this.rid}' to='localhost' ${extra} ver='1.6' xml:lang='en' xmpp:version='1.0' xmlns='${NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh'/>`,
    );
    this.sid = bodyAttr(text, 'sid') ?? '';
    this.created = text;
    return text;
  }

  /** The next request with `content` (stanzas) and extra body attributes; resolves with the response text. */
  send(content = '', extra = ''): Promise<string> {
    return this.sendRid(++this.rid, content, extra);
  }

  /** A request with an explicit rid (replays, gaps). */
  async sendRid(rid: number, content = '', extra = ''): Promise<string> {
    const { text } = await boshPost(
      this.server,
      `<body rid='${rid}' sid='${this.sid}' ${extra} xmlns='${NS_HTTPBIND}' xmlns:xmpp='urn:xmpp:xbosh'>${content}</body>`,
    );
    return text;
  }

  /** Restart the stream (after SASL success). */
  restart(): Promise<string> {
    return this.send('', "to='localhost' xmpp:restart='true'");
  }

  /** Create, authenticate (SASL PLAIN), restart and bind: resolves with the bound JID. */
  async login(user: string, password = 'x', resource = 'bosh'): Promise<string> {
    await this.create();
    const auth = await this.send(
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from(`\0${user}\0${password}`).toString('base64')}</auth>`,
    );
    if (!auth.includes('<success')) throw new Error(`BOSH login failed: ${auth}`);
    const features = await this.restart();
    if (!features.includes('urn:ietf:params:xml:ns:xmpp-bind')) throw new Error(`no bind feature: ${features}`);
    const bound = await this.send(
      `<iq type='set' id='bind1' xmlns='jabber:client'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>${resource}</resource></bind></iq>`,
    );
    const jid = /<jid>([^<]+)<\/jid>/.exec(bound)?.[1];
    if (!jid) throw new Error(`BOSH bind failed: ${bound}`);
    return jid;
  }
}
