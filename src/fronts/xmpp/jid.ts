/**
 * JIDs (RFC 7622) as the XMPP front uses them: `local@domain/resource`, where the local part is a
 * Herald user id. Herald ids may contain `@`, which a local part may not: it travels escaped as
 * `\40` (XEP-0106). Local parts are compared as they are (Herald ids are case-sensitive).
 */
import { USER_ID_RE } from '../../core/user-id.js';

/** A parsed JID. */
export interface Jid {
  /** Herald user id (unescaped local part); '' for a domain JID. */
  readonly user: string;
  readonly domain: string;
  /** Resource; '' for a bare JID. */
  readonly resource: string;
}

/** Longest local part, domain part and resource (RFC 7622 §3: 1023 bytes each; Herald ids are shorter). */
const MAX_PART = 1023;
/** Characters a domain part may hold here (ASCII hostnames and IP literals). */
const DOMAIN_RE = /^[A-Za-z0-9.:[\]-]{1,253}$/;

/** Escape a Herald user id as a JID local part. */
export function escapeLocal(user: string): string {
  return user.replaceAll('@', '\\40');
}

/** Parse a JID; undefined when it is malformed or its local part is not a Herald user id. */
export function parseJid(text: string): Jid | undefined {
  if (text.length === 0 || text.length > 3 * MAX_PART + 2) return undefined;
  const slash = text.indexOf('/');
  const head = slash === -1 ? text : text.slice(0, slash);
  const resource = slash === -1 ? '' : text.slice(slash + 1);
  if (slash !== -1 && (resource.length === 0 || resource.length > MAX_PART)) return undefined;
  const at = head.indexOf('@');
  const local = at === -1 ? '' : head.slice(0, at);
  const domain = (at === -1 ? head : head.slice(at + 1)).toLowerCase();
  if (!DOMAIN_RE.test(domain)) return undefined;
  if (at !== -1) {
    const user = local.replaceAll('\\40', '@');
    if (!USER_ID_RE.test(user)) return undefined;
    return { user, domain, resource };
  }
  return { user: '', domain, resource };
}

/** `user@domain`. */
export function bareJid(user: string, domain: string): string {
  return `${escapeLocal(user)}@${domain}`;
}

/** `user@domain/resource`. */
export function fullJid(user: string, domain: string, resource: string): string {
  return `${bareJid(user, domain)}/${resource}`;
}
