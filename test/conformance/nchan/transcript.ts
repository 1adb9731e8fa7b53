/**
 * Every response of the conformance suite compared with real Nchan, status and every header.
 *
 * Each request a test makes through the helpers in clients.ts (fetch, the raw TCP client, the
 * `ws` handshake, the EventSource client) is noted in issue order with its status and headers.
 * `HERALD_NCHAN_RECORD=1 npm run test:nchan` writes what real Nchan answered to
 * golden/<file>.json; every other run (`npm test` against Herald, `npm run test:nchan` against
 * Nchan, which checks that the recording is stable) compares each test's responses with it
 * in an afterEach hook, so a difference fails the test that made the request.
 *
 * Values that change from run to run are compared by shape (see {@link normalizeHeaders}).
 * Polling requests (waiting for a subscriber count) vary in number with timing; each is
 * compared with a recorded answer to the same request with the same status anywhere in the
 * file. A response whose head never arrived on one side (the test closed it first) is not
 * compared. Herald's intended differences are listed in ./intended-differences.ts and in
 * docs/nchan.md.
 */
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { INTENDED_DIFFERENCES } from './intended-differences.js';

const HERE = dirname(fileURLToPath(import.meta.url));
/** Folder of the recordings. */
export const GOLDEN_DIR = join(HERE, 'golden');
/** True when this run (against real Nchan) rewrites the recordings instead of checking them. */
export const RECORD = process.env.HERALD_NCHAN_RECORD === '1';

/** One request and what came back (status null: no response head was seen). */
export interface Entry {
  readonly req: string;
  readonly poll?: true;
  status: number | null;
  headers: Record<string, string> | null;
}

/** Headers a test sets on a request that say which request it is (others are the client's own). */
const DESCRIBING = new Set([
  'accept',
  'origin',
  'if-none-match',
  'if-modified-since',
  'last-event-id',
  'te',
  'upgrade',
  'sec-websocket-version',
  'sec-websocket-protocol',
  'content-type',
  'x-eventsource-event',
]);

/** A channel id made by chan(): prefix-time-random. */
const CHANNEL_ID = /[a-z]+-[0-9a-z]{6,}-[0-9a-f]{8}/g;

/**
 * A stable description of a request: method, path with channel ids and numbers replaced (a
 * path over 100 characters by its first segment), describing headers.
 */
export function describeRequest(method: string, path: string, headers: Record<string, string> = {}): string {
  const [pathname = '', query] = path.replace(CHANNEL_ID, '{ch}').split('?', 2);
  // Ids a test resumes from are time-dependent: digits and (in multiplexed tags) `-` become N.
  let p = pathname.replace(/\d+/g, 'N') + (query === undefined ? '' : `?${query.replace(/\d+|-/g, 'N')}`);
  if (p.length > 100) p = `${p.slice(0, p.indexOf('/', 1) + 1)}…`; // e.g. 256 random ids
  const hs = Object.entries(headers)
    .map(([k, v]) => [k.toLowerCase(), v] as const)
    .filter(([k]) => DESCRIBING.has(k))
    // An HTTP date (If-Modified-Since) names the weekday and month of the run: compared by shape.
    .map(
      ([k, v]) =>
        `${k}=${k === 'if-none-match' || k === 'last-event-id' ? v.replace(/\d+|-/g, 'N') : HTTP_DATE.test(v) ? '<http-date>' : v.replace(/\d+/g, 'N')}`,
    )
    .sort();
  return [method.toUpperCase(), p, ...hs].join(' ');
}

const HTTP_DATE = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * Response headers as compared: names lower-case; Date and Last-Modified by HTTP-date shape;
 * Etag and Content-Length with digit runs as N (message ids and info bodies carry times; in a
 * multiplexed Etag Nchan writes a channel's tag or `-` depending on timing, so `-` is N too);
 * the multipart boundary as B; the Server product as a presence marker; Sec-WebSocket-Accept
 * by shape (clients pick random keys; the suite checks the value for a fixed key).
 */
export function normalizeHeaders(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawName, v] of Object.entries(h)) {
    const k = rawName.toLowerCase();
    if (k === 'date' || k === 'last-modified') out[k] = HTTP_DATE.test(v) ? '<http-date>' : v;
    else if (k === 'etag') out[k] = v.replace(/\d+|-/g, 'N');
    else if (k === 'content-length') out[k] = v.replace(/\d+/g, 'N');
    else if (k === 'server') out[k] = '<present>';
    else if (k === 'sec-websocket-accept') out[k] = /^[A-Za-z0-9+/]{27}=$/.test(v) ? '<sha1-base64>' : v;
    else if (k === 'content-type') out[k] = v.replace(/boundary=\S+/, 'boundary=B');
    else out[k] = v;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

/** The transcript of the test that is running (tests in a file run one at a time). */
let current: { entries: Entry[]; pending: Set<Promise<void>> } | null = null;

/**
 * Note a request about to be made; call the returned function with the response head, or with
 * null if none came. A no-op outside a recorded test (e.g. the Herald-only bridge suite).
 */
export function note(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  poll = false,
): (status: number | null, headers?: Headers | Record<string, string | string[] | undefined>) => void {
  const t = current;
  if (!t) return () => undefined;
  const entry: Entry = { req: describeRequest(method, path, headers), status: null, headers: null, ...(poll ? { poll: true as const } : {}) };
  t.entries.push(entry);
  let settle!: () => void;
  const p = new Promise<void>((r) => {
    settle = r;
  });
  t.pending.add(p);
  return (status, hs) => {
    if (status !== null && hs) {
      entry.status = status;
      const flat: Record<string, string> = {};
      if (hs instanceof Headers)
        hs.forEach((v, k) => {
          flat[k] = v;
        });
      else for (const [k, v] of Object.entries(hs)) if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v;
      entry.headers = normalizeHeaders(flat);
    }
    t.pending.delete(p);
    settle();
  };
}

/** Recordings of one test file: test name → entries. */
type Golden = Record<string, Entry[]>;

/** The transcripts of one test file, checked against (or written to) golden/<file>.json. */
export class FileTranscript {
  private readonly recorded: Golden = {};
  private golden: Golden | null = null;
  private testName = '';

  constructor(
    private readonly file: string,
    private readonly target: 'nchan' | 'herald',
  ) {}

  private get path(): string {
    return join(GOLDEN_DIR, `${this.file}.json`);
  }

  /** Load the recording unless this run writes it. */
  load(): void {
    if (RECORD) return;
    if (!existsSync(this.path)) throw new Error(`no recording ${this.path}: run HERALD_NCHAN_RECORD=1 npm run test:nchan`);
    this.golden = JSON.parse(readFileSync(this.path, 'utf8')) as Golden;
  }

  /** Start noting the requests of test `name`. */
  begin(name: string): void {
    if (this.recorded[name]) throw new Error(`duplicate test name ${name} in ${this.file}`);
    this.testName = name;
    current = { entries: [], pending: new Set() };
  }

  /**
   * End the running test: wait (bounded) for response heads still on their way, then keep the
   * entries (record mode) or compare them, throwing one error that lists every difference.
   */
  async end(): Promise<void> {
    const t = current;
    current = null;
    if (!t) return;
    const deadline = new Promise((r) => setTimeout(r, 1000).unref());
    await Promise.race([Promise.all([...t.pending]), deadline]);
    this.recorded[this.testName] = t.entries.map((e) => ({ ...e }));
    if (RECORD) return;
    const diffs = this.compare(this.testName, t.entries);
    if (diffs.length > 0) {
      throw new Error(`responses differ from real Nchan's (test/conformance/nchan/golden/${this.file}.json):\n  ${diffs.join('\n  ')}`);
    }
  }

  /** Write the recording (record mode only). */
  save(): void {
    if (!RECORD) return;
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(this.path, `${JSON.stringify(this.recorded, null, 1)}\n`);
  }

  /** Every difference between `got` and the recording of test `name`. */
  private compare(name: string, got: Entry[]): string[] {
    const want = this.golden?.[name];
    if (!want) return [`test "${name}" has no recording: run HERALD_NCHAN_RECORD=1 npm run test:nchan`];
    const diffs: string[] = [];
    const seq = got.filter((e) => !e.poll);
    const wantSeq = want.filter((e) => !e.poll);
    if (seq.length !== wantSeq.length) {
      diffs.push(`${seq.length} requests, recording has ${wantSeq.length}: ${seq.map((e) => e.req).join(' | ')}`);
      return diffs;
    }
    seq.forEach((e, i) => diffs.push(...this.compareOne(name, `#${i} ${e.req}`, e, wantSeq[i]!)));
    for (const e of got.filter((x) => x.poll && x.status !== null)) {
      const match = Object.values(this.golden!)
        .flat()
        .find((w) => w.req === e.req && w.status === e.status);
      if (!match) diffs.push(`poll ${e.req}: status ${e.status}, never recorded for this request`);
      else diffs.push(...this.compareOne(name, `poll ${e.req}`, e, match));
    }
    return diffs;
  }

  private compareOne(name: string, label: string, got: Entry, want: Entry): string[] {
    if (got.req !== want.req) return [`${label}: recording has request ${want.req}`];
    if (got.status === null || want.status === null) return [];
    const allowed = (what: string): boolean =>
      this.target === 'herald' &&
      INTENDED_DIFFERENCES.some(
        (d) =>
          d.what === what &&
          (d.file === undefined || d.file === this.file) &&
          (d.test === undefined || d.test === name) &&
          (d.request === undefined || d.request.test(got.req)) &&
          (d.status === undefined || d.status === got.status),
      );
    const out: string[] = [];
    if (got.status !== want.status && !allowed('status')) out.push(`${label}: status ${got.status}, Nchan ${want.status}`);
    if (got.status !== want.status) return out;
    const names = new Set([...Object.keys(got.headers!), ...Object.keys(want.headers!)]);
    for (const k of [...names].sort()) {
      const a = got.headers![k];
      const b = want.headers![k];
      if (a !== b && !allowed(k))
        out.push(`${label}: ${k}: ${a === undefined ? '(absent)' : JSON.stringify(a)}, Nchan ${b === undefined ? '(absent)' : JSON.stringify(b)}`);
    }
    return out;
  }
}
