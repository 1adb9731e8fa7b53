/** SASL PLAIN (RFC 4616) initial responses as XMPP carries them (RFC 6120 §6.4.2: base64). */
import { bareJid } from './jid.js';

/** A decoded PLAIN response, or the SASL failure condition it earns. */
export type PlainResult =
  | { readonly user: string; readonly password: string }
  | { readonly failure: 'malformed-request' | 'incorrect-encoding' | 'invalid-authzid'; readonly text?: string };

/** Decode `authzid NUL authcid NUL password`; an authzid, if any, must be the user's own (bare JID or id). */
export function decodePlain(text: string, domain: string): PlainResult {
  if (text === '' || text === '=') return { failure: 'malformed-request', text: 'PLAIN needs an initial response' };
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return { failure: 'incorrect-encoding' };
  const parts = Buffer.from(text, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return { failure: 'malformed-request', text: 'Expected authzid NUL authcid NUL password' };
  const [authzid, user, password] = parts as [string, string, string];
  if (authzid !== '' && authzid !== bareJid(user, domain) && authzid !== user) return { failure: 'invalid-authzid' };
  return { user, password };
}
