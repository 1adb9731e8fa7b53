/**
 * Backend integration, the decisions side: which hook to ask and when, what an answer means,
 * caching of decisions, fail-closed (or fail-open) behaviour, token revocation and the webhook
 * queue. The HTTP client is an engine (`BackendTransport`, see engines/backend-http.ts); core never
 * imports it. Hook latency and webhook outcomes are published on diagnostics channels that the
 * api layer turns into metrics. Protocol: docs/backend.md.
 */
import { createHash, createHmac } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import type { Identity } from './auth.js';
import type { Authenticator } from './auth.js';
import type { BackendConfig } from './config-backend.js';
import type { HeraldConfig } from './config.js';
import { HeraldError, TimeoutError, toHeraldError } from './errors.js';
import type { Logger } from './logger.js';
import { parsePeerJson } from '../protocol/json.js';
import { Revocations } from './revocation.js';
import { WebhookQueue } from './webhooks.js';
import type { WebhookEventType } from './config-backend.js';

/** A hook was asked: `{ node, hook, outcome, ms }` (outcome: allow, deny, error, timeout). */
export const backendHookEvents = diagnostics.channel('herald:backend-hook');

/** Payload of `herald:backend-hook`. */
export interface BackendHookEvent {
  readonly node: string;
  readonly hook: string;
  readonly outcome: 'allow' | 'deny' | 'error' | 'timeout';
  readonly ms: number;
}

/** An HTTP answer of the backend. */
export interface BackendResponse {
  readonly status: number;
  /** Response body text. */
  readonly body: string;
}

/**
 * The HTTP client engine. Implementations keep connections alive and pool them per origin.
 * `post` rejects with TimeoutError when no full answer came within `timeoutMs`, with any other
 * error when the backend could not be reached; a non-2xx answer resolves normally.
 */
export interface BackendTransport {
  post(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<BackendResponse>;
  /** Release pooled connections. */
  close(): Promise<void>;
}

/** Hooks the backend may implement. */
export type HookName = 'connect' | 'subscribe' | 'publish' | 'imSend' | 'contacts' | 'rpc';

/** Credentials a client presented at connect. */
export interface ConnectRequest {
  readonly token?: string;
  /** Bare user name (development mode, or a name the backend checks). */
  readonly user?: string;
  readonly client?: string;
  readonly transport: string;
}

const USER_RE = /^[A-Za-z0-9_.@-]{1,128}$/;
const JWT_RE = /^[\w-]+\.[\w-]+\.[\w-]*$/;
const MAX_CACHE_ENTRIES = 100_000;

/** Signature header value over `<timestamp>.<body>`: `sha256=<hex>`. */
export function signBody(secret: string, timestamp: number, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** Close code for a failed connect: revoked/invalid token 3500, denied 3503, backend trouble 3002 (retry). */
export function connectCloseCode(err: HeraldError): number {
  if (err.code === 'HERALD_ERR_BACKEND_DENIED' || err.code === 'HERALD_ERR_FORBIDDEN') return 3503;
  if (err.temporary) return 3002;
  return 3500;
}

/** An RPC the backend answered with an application error; `wire` is the backend's code (1000–1999). */
export class BackendRpcError extends HeraldError {
  override name = 'BackendRpcError';
  constructor(code: number, message: string) {
    super('HERALD_ERR_RPC_ERROR', message);
    Object.defineProperty(this, 'wire', { value: code });
  }
}

interface Answer {
  readonly allow: boolean;
  readonly reason?: string;
  readonly [k: string]: unknown;
}

/** Options of `new Backend()`. */
export interface BackendOptions {
  readonly config: HeraldConfig;
  readonly nodeId: string;
  readonly logger: Logger;
  readonly auth: Authenticator;
}

/** The backend integration of one node. Hooks and webhooks are off until `attach` gives a transport. */
export class Backend {
  readonly config: BackendConfig;
  readonly revocations = new Revocations();
  readonly #nodeId: string;
  readonly #logger: Logger;
  readonly #auth: Authenticator;
  readonly #cache = new Map<string, { expires: number; value: unknown }>();
  readonly #wanted: ReadonlySet<WebhookEventType>;
  #transport: BackendTransport | undefined;
  #webhooks: WebhookQueue | undefined;
  #contactSync: ((user: string, contacts: string[]) => Promise<void>) | undefined;

  constructor(options: BackendOptions) {
    this.config = options.config.backend;
    this.#nodeId = options.nodeId;
    this.#logger = options.logger;
    this.#auth = options.auth;
    this.#wanted = new Set(this.config.webhookEvents);
    options.auth.revoked = (identity) => this.revocations.isRevoked(identity);
  }

  /** Start calling the backend through `transport` (hooks when `url` is set, webhooks when `webhookUrl` is). */
  attach(transport: BackendTransport): void {
    this.#transport = transport;
    const url = this.config.webhookUrl;
    if (url) this.#webhooks = new WebhookQueue({ config: this.config, url, nodeId: this.#nodeId, logger: this.#logger, transport });
  }

  /** Flush webhooks briefly and release the transport. */
  async close(): Promise<void> {
    await this.#webhooks?.close();
    await this.#transport?.close();
  }

  /** Whether a hook is configured. */
  has(hook: HookName): boolean {
    return this.#transport !== undefined && this.config.url !== undefined && this.#path(hook) !== '';
  }

  /** Whether webhooks of `type` are sent. */
  wants(type: WebhookEventType): boolean {
    return this.#webhooks !== undefined && this.#wanted.has(type);
  }

  /** Webhook events waiting (metrics). */
  get webhookBacklog(): number {
    return this.#webhooks?.length ?? 0;
  }

  /** Bytes of the webhook events waiting (serialized JSON). */
  get webhookBacklogBytes(): number {
    return this.#webhooks?.bytes ?? 0;
  }

  /**
   * Queue a webhook event (when that type is configured). Returns false when the queue is full
   * and the event was dropped.
   */
  emit(type: WebhookEventType, data: Record<string, unknown>): boolean {
    if (!this.#webhooks || !this.#wanted.has(type)) return false;
    return this.#webhooks.push(type, data);
  }

  /** Called with a user's contact list from the contacts hook (the IM stores it). */
  onContacts(sync: (user: string, contacts: string[]) => Promise<void>): void {
    this.#contactSync = sync;
  }

  /**
   * Authenticate a connection: verify a JWT locally when token verification is configured
   * (a token is otherwise opaque, for the backend), accept a development name, then ask the
   * connect hook when configured; then load the user's contact list when the contacts hook is
   * on. Resolves with the identity (undefined = anonymous).
   * Rejects with UnauthorizedError, HERALD_ERR_BACKEND_DENIED, or (fail closed) a backend error.
   */
  async authenticate(req: ConnectRequest): Promise<Identity | undefined> {
    const hook = this.has('connect');
    let identity: Identity | undefined;
    // With the connect hook, a token that is not a JWT (or with no local keys) is opaque: the backend judges it.
    if (req.token !== undefined && (!hook || (this.#auth.enabled && JWT_RE.test(req.token)))) identity = await this.#auth.verify(req.token);
    else if (req.user !== undefined && (this.#auth.devMode || !hook)) identity = this.#auth.devIdentity(req.user);
    if (!hook) {
      if (identity) await this.#loadContacts(identity.user);
      return identity;
    }
    const key = 'c:' + createHash('sha256').update(`${req.token ?? ''}\0${req.user ?? ''}`).digest('base64');
    const answer = await this.#decide('connect', key, {
      client: req.client,
      transport: req.transport,
      token: req.token,
      user: identity?.user ?? req.user,
      claims: identity?.claims,
    });
    if (answer === undefined) return identity; // failed open
    if (!answer.allow) throw new HeraldError('HERALD_ERR_BACKEND_DENIED', `Connection denied by the backend${reasonOf(answer)}`);
    const user = typeof answer.user === 'string' ? answer.user : identity?.user;
    if (user === undefined) return undefined;
    if (!USER_RE.test(user)) throw new HeraldError('HERALD_ERR_BACKEND_UNAVAILABLE', 'The connect hook answered an invalid user id');
    const extra = isObject(answer.claims) ? answer.claims : {};
    const claims = { ...(identity?.claims ?? {}), ...extra, sub: user };
    const channels = Array.isArray(answer.channels) ? answer.channels.filter((c): c is string => typeof c === 'string') : identity?.channels;
    const out: Identity = {
      user,
      name: typeof answer.name === 'string' ? answer.name : identity?.name,
      channels,
      exp: identity?.exp,
      jti: identity?.jti ?? (typeof claims.jti === 'string' ? claims.jti : undefined),
      iat: identity?.iat ?? (typeof claims.iat === 'number' ? claims.iat : undefined),
      claims,
    };
    if (this.revocations.isRevoked(out)) throw new HeraldError('HERALD_ERR_TOKEN_REVOKED');
    await this.#loadContacts(user);
    return out;
  }

  /**
   * Ask the subscribe hook (cached). Throws HERALD_ERR_BACKEND_DENIED or, fail closed, a backend
   * error. `queue` marks a STOMP work queue of that name (the hook's body gets `queue: true`).
   */
  async authorizeSubscribe(identity: Identity | undefined, client: string, channel: string, queue = false): Promise<void> {
    if (!this.has('subscribe')) return;
    const user = identity?.user ?? '';
    const body = queue ? { user: identity?.user, client, channel, queue: true } : { user: identity?.user, client, channel };
    const answer = await this.#decide('subscribe', `${queue ? 'q' : 's'}:${user}\0${channel}`, body);
    if (answer && !answer.allow) throw new HeraldError('HERALD_ERR_BACKEND_DENIED', `Subscription denied by the backend${reasonOf(answer)}`);
  }

  /**
   * Publish proxy: the backend accepts (`{"allow":true}`), modifies (`{"allow":true,"data":…}`)
   * or rejects (`{"allow":false}`) a client publication. Resolves with the data to publish.
   * Not cached: the answer depends on the data.
   */
  async proxyPublish(identity: Identity | undefined, client: string, channel: string, data: unknown): Promise<unknown> {
    if (!this.has('publish')) return data;
    const answer = await this.#decide('publish', undefined, { user: identity?.user, client, channel, data });
    if (!answer) return data;
    if (!answer.allow) throw new HeraldError('HERALD_ERR_BACKEND_DENIED', `Publication rejected by the backend${reasonOf(answer)}`);
    return 'data' in answer ? answer.data : data;
  }

  /** IM send proxy, like `proxyPublish` for an IM message (`to` or `conversation`). */
  async proxyImSend(user: string, client: string, target: { to?: string; conversation?: string }, data: unknown): Promise<unknown> {
    if (!this.has('imSend')) return data;
    const answer = await this.#decide('imSend', undefined, { user, client, to: target.to, conversation: target.conversation, data });
    if (!answer) return data;
    if (!answer.allow) throw new HeraldError('HERALD_ERR_BACKEND_DENIED', `Message rejected by the backend${reasonOf(answer)}`);
    return 'data' in answer ? answer.data : data;
  }

  /**
   * Forward an RPC; resolves with the backend's `result`. Rejects with BackendRpcError for an
   * application error (`{"error":{"code":1001,"message":"…"}}`), HERALD_ERR_BACKEND_TIMEOUT or
   * HERALD_ERR_BACKEND_UNAVAILABLE. Never fails open.
   */
  async rpc(identity: Identity | undefined, client: string, method: string, data: unknown): Promise<unknown> {
    const started = Date.now();
    let res: BackendResponse;
    try {
      res = await this.#post('rpc', { user: identity?.user, client, method, data }, this.config.rpcTimeoutMs);
    } catch (err) {
      throw this.#failure('rpc', started, err);
    }
    const body = parseObject(res.body);
    if (res.status < 200 || res.status > 299 || !body) {
      throw this.#failure('rpc', started, new Error(`status ${res.status}`));
    }
    this.#observe('rpc', body.error ? 'deny' : 'allow', started);
    if (isObject(body.error)) {
      const code = typeof body.error.code === 'number' && body.error.code >= 1000 && body.error.code <= 1999 ? body.error.code : 1000;
      const message = typeof body.error.message === 'string' ? body.error.message.slice(0, 256) : 'RPC failed';
      throw new BackendRpcError(code, message);
    }
    return body.result ?? null;
  }

  async #loadContacts(user: string): Promise<void> {
    if (!this.has('contacts') || !this.#contactSync) return;
    const key = `k:${user}`;
    if (this.#cached(key) !== undefined) return;
    const started = Date.now();
    try {
      const res = await this.#post('contacts', { user }, this.config.timeoutMs);
      const body = parseObject(res.body);
      if (res.status < 200 || res.status > 299 || !body || !Array.isArray(body.contacts)) throw new Error(`status ${res.status}`);
      const list = body.contacts.filter((c): c is string => typeof c === 'string' && USER_RE.test(c) && c !== user);
      this.#observe('contacts', 'allow', started);
      await this.#contactSync(user, list);
      this.#remember(key, list);
    } catch (err) {
      // A contact list is not worth refusing a login for: keep the stored one.
      const e = this.#failure('contacts', started, err);
      this.#logger.warn({ user, err: e.message }, 'contacts hook failed');
    }
  }

  /**
   * Ask a decision hook. Resolves with the answer, or undefined when the hook failed and
   * `failOpen` is set; throws a backend error when it failed and the policy is fail-closed.
   * 401/403 answers are denials; other non-2xx answers and unparsable bodies are failures.
   */
  async #decide(hook: HookName, key: string | undefined, body: Record<string, unknown>): Promise<Answer | undefined> {
    if (key !== undefined) {
      const hit = this.#cached(key) as Answer | undefined;
      if (hit) return hit;
    }
    const started = Date.now();
    let answer: Answer;
    try {
      const res = await this.#post(hook, body, this.config.timeoutMs);
      const parsed = parseObject(res.body);
      if (res.status === 401 || res.status === 403) answer = { allow: false, reason: typeof parsed?.reason === 'string' ? parsed.reason : undefined };
      else if (res.status >= 200 && res.status <= 299 && parsed && typeof parsed.allow === 'boolean') answer = parsed as Answer;
      else throw new Error(res.status >= 200 && res.status <= 299 ? 'answer without a boolean "allow"' : `status ${res.status}`);
    } catch (err) {
      const e = this.#failure(hook, started, err);
      if (this.config.failOpen) {
        this.#logger.warn({ hook, err: e.message }, 'backend hook failed; allowing (failOpen)');
        return undefined;
      }
      this.#logger.warn({ hook, err: e.message }, 'backend hook failed; denying');
      throw e;
    }
    this.#observe(hook, answer.allow ? 'allow' : 'deny', started);
    if (key !== undefined) this.#remember(key, answer);
    return answer;
  }

  #post(hook: HookName, body: Record<string, unknown>, timeoutMs: number): Promise<BackendResponse> {
    const transport = this.#transport;
    if (!transport || !this.config.url) return Promise.reject(new Error('no backend configured'));
    const text = JSON.stringify({ hook: hook === 'imSend' ? 'im.send' : hook, node: this.#nodeId, ...body });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.config.secret) {
      const ts = Math.floor(Date.now() / 1000);
      headers['x-herald-timestamp'] = String(ts);
      headers['x-herald-signature'] = signBody(this.config.secret, ts, text);
    }
    return transport.post(this.config.url.replace(/\/$/, '') + this.#path(hook), text, headers, timeoutMs);
  }

  /** Map a failed call to the client-facing error and record it. */
  #failure(hook: HookName, started: number, err: unknown): HeraldError {
    const timeout = err instanceof TimeoutError;
    this.#observe(hook, timeout ? 'timeout' : 'error', started);
    if (err instanceof HeraldError && !timeout) return toHeraldError(err);
    const what = hook === 'imSend' ? 'im.send' : hook;
    return timeout
      ? new HeraldError('HERALD_ERR_BACKEND_TIMEOUT', `The backend did not answer the ${what} hook in time`)
      : new HeraldError('HERALD_ERR_BACKEND_UNAVAILABLE', `The backend failed the ${what} hook: ${String((err as Error)?.message ?? err).slice(0, 100)}`);
  }

  #observe(hook: HookName, outcome: BackendHookEvent['outcome'], started: number): void {
    if (backendHookEvents.hasSubscribers) backendHookEvents.publish({ node: this.#nodeId, hook, outcome, ms: Date.now() - started } satisfies BackendHookEvent);
  }

  #path(hook: HookName): string {
    const c = this.config;
    switch (hook) {
      case 'connect': return c.connectPath;
      case 'subscribe': return c.subscribePath;
      case 'publish': return c.publishPath;
      case 'imSend': return c.imSendPath;
      case 'contacts': return c.contactsPath;
      case 'rpc': return c.rpcPath;
    }
  }

  #cached(key: string): unknown {
    const e = this.#cache.get(key);
    if (!e) return undefined;
    if (e.expires <= Date.now()) {
      this.#cache.delete(key);
      return undefined;
    }
    return e.value;
  }

  #remember(key: string, value: unknown): void {
    if (this.config.cacheTtlMs <= 0) return;
    if (this.#cache.size >= MAX_CACHE_ENTRIES) this.#cache.clear();
    this.#cache.set(key, { expires: Date.now() + this.config.cacheTtlMs, value });
  }

  /** Forget cached decisions (all, or those of one user). */
  invalidate(user?: string): void {
    if (user === undefined) return this.#cache.clear();
    for (const key of this.#cache.keys()) if (key.startsWith(`s:${user}\0`) || key === `k:${user}`) this.#cache.delete(key);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The backend's answer as an object; not JSON, not an object or nested too deep is no answer. */
function parseObject(text: string): Record<string, unknown> | undefined {
  const r = parsePeerJson(text);
  return r.ok && isObject(r.value) ? r.value : undefined;
}

function reasonOf(a: Answer): string {
  return typeof a.reason === 'string' && a.reason ? `: ${a.reason.slice(0, 200)}` : '';
}
