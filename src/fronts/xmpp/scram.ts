/**
 * The server side of SASL SCRAM-SHA-1 (RFC 5802) as XMPP carries it (RFC 6120 §6.4: base64 in
 * `<auth>`, `<challenge>`, `<response>` and `<success>`), without channel binding (no -PLUS
 * mechanism is offered, so a client flag of `n` or `y` is accepted and `p=` refused).
 *
 * The server never sees a password: it checks the client's proof against the user's stored key
 * (RFC 5802 §3) and proves itself with the server key. Both come from the application (the
 * backend's `scram` hook). For a user the application does not know, the exchange runs on with a
 * made-up salt and fails at the proof, so an attacker cannot tell unknown users from wrong
 * passwords (RFC 5802 §5.1).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ScramCredentials } from '../../core/backend.js';

/** The mechanism's name on the wire. */
export const SCRAM_SHA_1 = 'SCRAM-SHA-1';

/** Longest client message accepted (bytes of the decoded text): names are ≤ 128 characters. */
const MAX_MESSAGE_BYTES = 1_024;
/** Nonce bytes the server adds to the client's. */
const SERVER_NONCE_BYTES = 18;
/** Iterations claimed for a user the application does not know (a common real value). */
const DECOY_ITERATIONS = 4_096;
/** Decoy-salt key of a node with no `backend.secret` (one per process). */
const PROCESS_DECOY_KEY = randomBytes(32);

/**
 * The key of the decoy salts: derived from `secret` (`backend.secret`, which every node of a
 * cluster shares), so an unknown user gets the same made-up salt from every node, as a real user
 * gets the application's one salt; without a secret, a key per process (stable on one node only).
 */
export function decoyKey(secret: string | undefined): Buffer {
  return secret === undefined ? PROCESS_DECOY_KEY : createHmac('sha256', secret).update('herald scram decoy salt').digest();
}

/** A SASL failure condition (RFC 6120 §6.5) and an optional text. */
export interface ScramFailure {
  readonly failure: 'malformed-request' | 'incorrect-encoding' | 'invalid-authzid' | 'encryption-required' | 'not-authorized';
  readonly text?: string;
}

/** The parsed client-first message: the user it names and what the exchange keeps of it. */
export interface ClientFirst {
  readonly user: string;
  /** The GS2 header (`n,,` / `y,,` with or without `a=`), echoed in the client-final `c=`. */
  readonly gs2Header: string;
  readonly bare: string;
  readonly clientNonce: string;
}

/** Base64 text as the SASL elements carry it, decoded; undefined when it is not canonical base64. */
function decodeBase64(text: string): string | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  const raw = Buffer.from(text, 'base64');
  if (raw.length > MAX_MESSAGE_BYTES) return undefined;
  return raw.toString('utf8');
}

/** A `saslname` (RFC 5802 §5.1): `=2C` is `,` and `=3D` is `=`; any other `=` is malformed. */
function unescapeName(v: string): string | undefined {
  if (/=(?!2C|3D)/.test(v)) return undefined;
  return v.replace(/=2C/g, ',').replace(/=3D/g, '=');
}

/** The printable nonce characters (RFC 5802 §7: printable ASCII except `,`). */
const NONCE_RE = /^[\x21-\x2b\x2d-\x7e]+$/;

/**
 * Parse the client-first message (the `<auth>` element's text). `domain`: an authzid, if any,
 * must be the user's own bare JID or id.
 */
export function parseClientFirst(base64: string, domain: string): ClientFirst | ScramFailure {
  const text = decodeBase64(base64.trim());
  if (text === undefined) return { failure: 'incorrect-encoding' };
  const m = /^([nyp])(=[^,]*)?,(a=[^,]*)?,(.*)$/s.exec(text);
  if (!m) return { failure: 'malformed-request', text: 'Expected a GS2 header' };
  if (m[1] === 'p') return { failure: 'malformed-request', text: 'Channel binding is not offered' };
  if (m[2] !== undefined) return { failure: 'malformed-request', text: 'Bad channel-binding flag' };
  const bare = m[4]!;
  const attrs = bare.split(',');
  if (attrs[0]?.startsWith('m=')) return { failure: 'malformed-request', text: 'Mandatory extensions are not supported' };
  if (!attrs[0]?.startsWith('n=') || !attrs[1]?.startsWith('r=')) return { failure: 'malformed-request', text: 'Expected n= and r=' };
  const user = unescapeName(attrs[0].slice(2));
  const clientNonce = attrs[1].slice(2);
  if (!user || !NONCE_RE.test(clientNonce)) return { failure: 'malformed-request', text: 'Bad user name or nonce' };
  if (m[3] !== undefined) {
    const authzid = unescapeName(m[3].slice(2));
    if (authzid !== user && authzid !== `${user}@${domain}`) return { failure: 'invalid-authzid' };
  }
  return { user, gs2Header: text.slice(0, text.length - bare.length), bare, clientNonce };
}

const hmac = (key: Buffer, text: string): Buffer => createHmac('sha1', key).update(text).digest();

/** One SCRAM-SHA-1 exchange, from the server-first message to the server's signature. */
export class ScramExchange {
  readonly #first: ClientFirst;
  readonly #credentials: ScramCredentials | undefined;
  readonly #nonce: string;
  readonly #serverFirst: string;

  /**
   * `credentials`: the user's keys, or undefined for a user the application does not know (the
   * exchange then fails at the proof, after a salt made from `decoy`, see decoyKey).
   */
  constructor(first: ClientFirst, credentials: ScramCredentials | undefined, decoy: Buffer) {
    this.#first = first;
    this.#credentials = credentials;
    this.#nonce = first.clientNonce + randomBytes(SERVER_NONCE_BYTES).toString('base64');
    const salt = credentials?.salt ?? createHmac('sha256', decoy).update(first.user).digest().subarray(0, 16);
    const iterations = credentials?.iterations ?? DECOY_ITERATIONS;
    this.#serverFirst = `r=${this.#nonce},s=${salt.toString('base64')},i=${iterations}`;
  }

  /** The user the exchange is for. */
  get user(): string {
    return this.#first.user;
  }

  /** The server-first message, base64 (the `<challenge>` text). */
  challenge(): string {
    return Buffer.from(this.#serverFirst).toString('base64');
  }

  /**
   * Check the client-final message (the `<response>` text): the echoed GS2 header, the combined
   * nonce and the proof. Returns the server-final message, base64 (the `<success>` text), or the
   * failure.
   */
  finish(base64: string): { readonly success: string } | ScramFailure {
    const text = decodeBase64(base64.trim());
    if (text === undefined) return { failure: 'incorrect-encoding' };
    const at = text.lastIndexOf(',p=');
    if (at < 0) return { failure: 'malformed-request', text: 'Expected a proof' };
    const withoutProof = text.slice(0, at);
    const attrs = withoutProof.split(',');
    if (attrs[0] !== `c=${Buffer.from(this.#first.gs2Header).toString('base64')}`)
      return { failure: 'malformed-request', text: 'Channel binding does not match' };
    if (attrs[1] !== `r=${this.#nonce}`) return { failure: 'malformed-request', text: 'Nonce does not match' };
    const proofText = text.slice(at + 3);
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(proofText)) return { failure: 'incorrect-encoding' };
    const proof = Buffer.from(proofText, 'base64');
    const credentials = this.#credentials;
    if (!credentials || proof.length !== credentials.storedKey.length) return { failure: 'not-authorized' };
    const authMessage = `${this.#first.bare},${this.#serverFirst},${withoutProof}`;
    const signature = hmac(credentials.storedKey, authMessage);
    const clientKey = Buffer.alloc(proof.length);
    for (let i = 0; i < proof.length; i++) clientKey[i] = proof[i]! ^ signature[i]!;
    if (!timingSafeEqual(createHash('sha1').update(clientKey).digest(), credentials.storedKey)) return { failure: 'not-authorized' };
    return { success: Buffer.from(`v=${hmac(credentials.serverKey, authMessage).toString('base64')}`).toString('base64') };
  }
}
