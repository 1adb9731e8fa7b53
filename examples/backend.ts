/**
 * An example application backend for Herald: a plain Node HTTP server that implements the auth
 * hooks, the publish / IM proxies, the contacts hook and RPC, and receives webhooks (verifying
 * their signature and dropping duplicates by event id). The integration tests run it too.
 *
 *   npx tsx examples/backend.ts --port 3000 --secret change-me-0123456789
 *
 * Rules (a stand-in for the application's own database):
 *  - connect: token `user:<id>` → allowed as <id>; `deny` or a user starting with `banned` → denied;
 *    a token starting with `slow` waits `slowMs`; a verified JWT (claims given) is allowed as its `sub`;
 *    a bare name (`claimedUser`, which nothing has verified) is let in without being vouched for:
 *    the answer names no user, so the name counts only where Herald accepts bare names itself
 *    (development mode) and the connection is otherwise anonymous.
 *  - subscribe: `private:<id>` only for <id>; `forbidden:*` denied; everything else allowed.
 *  - publish and im.send: text containing `spam` rejected; `darn` replaced by `****` (modified);
 *    anything else accepted unchanged.
 *  - contacts: `<id>.friend` and the ids given with `setContacts`.
 *  - scram: the SCRAM-SHA-1 keys of a password given with `setPassword` (never the password), or 404.
 *  - rpc: `echo` (returns data), `add` ({a,b} → a+b), `slow` (waits data.ms), `fail` (error 1001).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** A webhook event as received. */
export interface ReceivedEvent {
  id: string;
  type: string;
  time: number;
  node: string;
  data: Record<string, unknown>;
}

/** Options of `startBackend`. */
export interface ExampleBackendOptions {
  port?: number;
  host?: string;
  /** Shared secret of X-Herald-Signature; when set, unsigned or badly signed webhooks get 401. */
  secret?: string;
  /** Delay of `slow` connect tokens and `slow:` channels, ms. */
  slowMs?: number;
  /** Largest accepted timestamp skew of a signature, seconds. */
  toleranceSec?: number;
}

/** A running example backend. */
export interface ExampleBackend {
  readonly url: string;
  readonly server: Server;
  /** Webhook events received, each id once, in arrival order. */
  readonly events: ReceivedEvent[];
  /** Counters: webhook requests, duplicate events dropped, bad signatures, hook calls by name. */
  readonly stats: { webhookRequests: number; duplicates: number; badSignatures: number; hooks: Record<string, number> };
  /** Answer the next `n` webhook requests with 500. */
  failWebhooks(n: number): void;
  /** Answer every hook with 500 while true. */
  setBroken(broken: boolean): void;
  /** Contacts returned for `user` (besides `<user>.friend`). */
  setContacts(user: string, contacts: string[]): void;
  /** Keep the SCRAM-SHA-1 keys of `user`'s password (for the scram hook). */
  setPassword(user: string, password: string): void;
  close(): Promise<void>;
}

/** What the scram hook answers for a user: the salt, iterations, stored key and server key (base64). */
export interface ScramKeys {
  salt: string;
  iterations: number;
  storedKey: string;
  serverKey: string;
}

/**
 * The SCRAM-SHA-1 keys of a password (RFC 5802 §3): what an application keeps instead of the
 * password (at sign-up or password change) and hands to Herald's scram hook.
 */
export function scramKeys(password: string, salt = randomBytes(16), iterations = 4_096): ScramKeys {
  const salted = pbkdf2Sync(password.normalize('NFKC'), salt, iterations, 20, 'sha1');
  const clientKey = createHmac('sha1', salted).update('Client Key').digest();
  return {
    salt: salt.toString('base64'),
    iterations,
    storedKey: createHash('sha1').update(clientKey).digest('base64'),
    serverKey: createHmac('sha1', salted).update('Server Key').digest('base64'),
  };
}

/** Verify `X-Herald-Signature` (`sha256=<hex>` over `<timestamp>.<body>`) and the timestamp's age. */
export function verifySignature(secret: string, headers: IncomingMessage['headers'], body: string, toleranceSec = 300): boolean {
  const ts = Number(headers['x-herald-timestamp']);
  const sig = String(headers['x-herald-signature'] ?? '');
  if (!Number.isInteger(ts) || Math.abs(Date.now() / 1000 - ts) > toleranceSec) return false;
  const want = Buffer.from('sha256=' + createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex'));
  const got = Buffer.from(sig);
  return got.length === want.length && timingSafeEqual(got, want);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function readBody(req: IncomingMessage, max = 4 * 1024 * 1024): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > max) req.destroy(new Error('too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

/** Moderate a message payload: reject spam, mask `darn`, accept the rest. */
function moderate(data: unknown): { allow: boolean; reason?: string; data?: unknown } {
  const text = typeof data === 'object' && data !== null ? (data as { text?: unknown }).text : undefined;
  if (typeof text !== 'string') return { allow: true };
  if (text.includes('spam')) return { allow: false, reason: 'no spam' };
  if (text.includes('darn')) return { allow: true, data: { ...(data as object), text: text.replaceAll('darn', '****'), moderated: true } };
  return { allow: true };
}

/** Start the example backend (port 0 = any free port). */
export async function startBackend(options: ExampleBackendOptions = {}): Promise<ExampleBackend> {
  const slowMs = options.slowMs ?? 2_000;
  const events: ReceivedEvent[] = [];
  const seen = new Set<string>();
  const stats = { webhookRequests: 0, duplicates: 0, badSignatures: 0, hooks: {} as Record<string, number> };
  const contacts = new Map<string, string[]>();
  const passwords = new Map<string, ScramKeys>();
  let failures = 0;
  let broken = false;

  const hook = async (name: string, b: Record<string, unknown>): Promise<[number, unknown]> => {
    stats.hooks[name] = (stats.hooks[name] ?? 0) + 1;
    if (broken) return [500, { error: 'broken on purpose' }];
    const user = typeof b.user === 'string' ? b.user : undefined;
    switch (name) {
      case 'connect': {
        const token = typeof b.token === 'string' ? b.token : undefined;
        if (token?.startsWith('slow')) await sleep(slowMs);
        // `user` is set only for a verified token; `claimedUser` is whatever name the client typed.
        const claimed = typeof b.claimedUser === 'string' ? b.claimedUser : undefined;
        if (token === 'deny' || (user ?? claimed)?.startsWith('banned')) return [200, { allow: false, reason: 'banned' }];
        if (token?.startsWith('user:')) return [200, { allow: true, user: token.slice(5), claims: { role: 'member' } }];
        if (b.claims && user) return [200, { allow: true }];
        // Never answer `user: claimed`: that would turn an unproven name into a verified identity.
        if (claimed && !token) return [200, { allow: true }];
        return [403, { reason: 'unknown credentials' }];
      }
      case 'subscribe': {
        const channel = String(b.channel);
        if (channel.startsWith('slow:')) await sleep(slowMs);
        if (channel.startsWith('forbidden:')) return [200, { allow: false, reason: 'forbidden channel' }];
        if (channel.startsWith('private:')) return [200, { allow: channel === `private:${user}` }];
        return [200, { allow: true }];
      }
      case 'publish':
      case 'im.send':
        return [200, moderate(b.data)];
      case 'contacts':
        return [200, { contacts: [`${user}.friend`, ...(contacts.get(user ?? '') ?? [])] }];
      case 'scram': {
        const keys = passwords.get(user ?? '');
        return keys ? [200, keys] : [404, { error: 'no such user' }];
      }
      case 'rpc': {
        const data = b.data as Record<string, unknown> | null;
        switch (b.method) {
          case 'echo':
            return [200, { result: { echo: data, user: user ?? null } }];
          case 'add':
            return [200, { result: Number(data?.a) + Number(data?.b) }];
          case 'slow':
            await sleep(Number(data?.ms ?? slowMs));
            return [200, { result: 'late' }];
          case 'fail':
            return [200, { error: { code: 1001, message: 'it failed on purpose' } }];
          default:
            return [200, { error: { code: 1404, message: `no method ${String(b.method)}` } }];
        }
      }
      default:
        return [404, { error: 'no such hook' }];
    }
  };

  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method === 'POST' && path === '/webhook') {
        stats.webhookRequests++;
        if (options.secret && !verifySignature(options.secret, req.headers, body, options.toleranceSec)) {
          stats.badSignatures++;
          return json(res, 401, { error: 'bad signature' });
        }
        if (failures > 0) {
          failures--;
          return json(res, 500, { error: 'failing on purpose' });
        }
        const batch = JSON.parse(body) as { events: ReceivedEvent[] };
        for (const e of batch.events) {
          if (seen.has(e.id)) stats.duplicates++;
          else {
            seen.add(e.id);
            events.push(e);
          }
        }
        return json(res, 200, { received: batch.events.length });
      }
      if (req.method === 'POST' && path.startsWith('/herald/')) {
        if (options.secret && !verifySignature(options.secret, req.headers, body, options.toleranceSec)) return json(res, 401, { reason: 'bad signature' });
        const [status, answer] = await hook(path.slice('/herald/'.length), JSON.parse(body) as Record<string, unknown>);
        return json(res, status, answer);
      }
      if (req.method === 'GET' && path === '/events') return json(res, 200, { events, stats });
      json(res, 404, { error: 'not found' });
    })().catch((err: unknown) => {
      if (!res.headersSent) json(res, 400, { error: String((err as Error).message) });
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const addr = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${addr.port}`,
    server,
    events,
    stats,
    failWebhooks: (n) => void (failures = n),
    setBroken: (b) => void (broken = b),
    setContacts: (user, list) => void contacts.set(user, list),
    setPassword: (user, password) => void passwords.set(user, scramKeys(password)),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// Run as a program: print the Herald options to use and log each webhook event.
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : undefined;
  };
  const secret = arg('secret') ?? process.env.HERALD_BACKEND_SECRET;
  const b = await startBackend({ port: Number(arg('port') ?? 3000), secret });
  let shown = 0;
  setInterval(() => {
    for (; shown < b.events.length; shown++) console.log('webhook', JSON.stringify(b.events[shown]));
  }, 200).unref();
  console.log(`example backend on ${b.url}; run Herald with:
  herald serve --backend.url ${b.url}/herald --backend.connect-path /connect --backend.subscribe-path /subscribe \\
    --backend.publish-path /publish --backend.im-send-path /im.send --backend.contacts-path /contacts \\
    --backend.webhook-url ${b.url}/webhook${secret ? ` --backend.secret ${secret}` : ''}`);
}
