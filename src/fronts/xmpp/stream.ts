/**
 * What the server writes to open, describe and close an XMPP stream (RFC 6120 §4, RFC 7395 §3):
 * the stream header in each framing, the stream features of each negotiation step, and the
 * closing element.
 */
import { randomFillSync } from 'node:crypto';
import type { Framing } from './input.js';
import { NS_SM } from './stream-management.js';
import { el, NS } from './xml.js';

/** Where the stream's negotiation stands. */
export type Phase = 'auth' | 'bind' | 'ready';

/** Random bytes of one stream id (16 hexadecimal characters). */
const ID_BYTES = 8;
/** Stream ids drawn from one refill of the pool. */
const IDS_PER_POOL = 256;
/**
 * Random bytes for the next stream ids, refilled from the CSPRNG in one call: every login
 * opens two streams, and a CSPRNG call per header showed in the CPU of a login.
 */
const idPool = Buffer.alloc(ID_BYTES * IDS_PER_POOL);
let idNext = idPool.length;

/** A fresh, unpredictable stream id (RFC 6120 §4.7.3): 8 fresh bytes from the CSPRNG for each. */
function streamId(): string {
  if (idNext === idPool.length) {
    randomFillSync(idPool);
    idNext = 0;
  }
  const start = idNext;
  idNext += ID_BYTES;
  return idPool.toString('hex', start, idNext);
}

/**
 * Our stream header (a new stream id each time); none for BOSH, whose stream attributes travel
 * in the response `<body/>`. A `legacy` stream (the client sent no version) gets no version.
 */
export function streamHeaderXml(framing: Framing | undefined, domain: string, legacy: boolean): string | undefined {
  if (framing === 'bosh') return undefined;
  const id = streamId();
  const common = { from: domain, id, version: legacy ? undefined : '1.0', 'xml:lang': 'en' };
  if (framing === 'framed') return el('open', { xmlns: NS.FRAMING, ...common });
  return `<?xml version='1.0'?>${el('stream:stream', { xmlns: NS.CLIENT, 'xmlns:stream': NS.STREAM, ...common }).replace('/>', '>')}`;
}

/**
 * `<stream:features/>` of a negotiation step: STARTTLS (alone when required) and the SASL
 * `mechanisms` (in order of preference) with legacy auth before authentication; bind, the optional session and stream
 * management after it. `framed` streams declare the stream prefix on the element.
 */
export function streamFeaturesXml(phase: Phase, tls: 'optional' | 'required' | undefined, framed: boolean, mechanisms: readonly string[]): string {
  // A handful of combinations (phase, TLS offer, framing, mechanisms): each is built once.
  const key = `${phase} ${tls} ${framed} ${mechanisms.join(' ')}`;
  let xml = featuresCache.get(key);
  if (xml === undefined) featuresCache.set(key, (xml = buildFeatures(phase, tls, framed, mechanisms)));
  return xml;
}

/** Features already built, by combination (at most 3 phases × 3 TLS offers × 2 framings × the node's mechanism lists). */
const featuresCache = new Map<string, string>();

function buildFeatures(phase: Phase, tls: 'optional' | 'required' | undefined, framed: boolean, mechanisms: readonly string[]): string {
  const starttls = tls === undefined ? undefined : el('starttls', { xmlns: NS.TLS }, tls === 'required' ? [el('required')] : []);
  const features =
    phase !== 'auth'
      ? [el('bind', { xmlns: NS.BIND }), el('session', { xmlns: NS.SESSION }, [el('optional')]), el('sm', { xmlns: NS_SM })]
      : tls === 'required'
        ? [starttls]
        : [
            starttls,
            el(
              'mechanisms',
              { xmlns: NS.SASL },
              mechanisms.map((m) => el('mechanism', {}, [m])),
            ),
            el('auth', { xmlns: NS.IQ_AUTH_FEATURE }),
          ];
  return el('stream:features', framed ? { 'xmlns:stream': NS.STREAM } : {}, features);
}

/** The element that ends the stream; none for BOSH (its `terminate` body does). */
export function streamCloseXml(framing: Framing | undefined): string | undefined {
  if (framing === 'bosh') return undefined;
  return framing === 'framed' ? el('close', { xmlns: NS.FRAMING }) : '</stream:stream>';
}
