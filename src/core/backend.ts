/**
 * Backend integration, the decisions side: which hook to ask and when, what an answer means,
 * caching of decisions, fail-closed (or fail-open) behaviour, token revocation and the webhook
 * queue. The HTTP client is an engine (`BackendTransport`, see engines/backend-http.ts); core never
 * imports it. Hook latency and webhook outcomes are published on diagnostics channels that the
 * api layer turns into metrics. Protocol: docs/backend.md.
 */
import { createHash } from 'node:crypto';
import type { Identity } from './auth.js';
import type { Authenticator } from './auth.js';
import { DecisionCache } from './backend-cache.js';
import { BackendHooks, type BackendResponse, type BackendTransport, type HookAnswer, type HookName, isObject, parseObject } from './backend-hooks.js';
import type { WebhookEventType } from './config-backend.js';
import type { BackendConfig } from './config.js';
import type { HeraldConfig } from './config.js';
import { HeraldError } from './errors.js';
import type { Logger } from './logger.js';
import { Revocations } from './revocation.js';
import { WebhookQueue } from './webhooks.js';
import { USER_ID_RE } from './user-id.js';

/** Credentials a client presented at connect. */
export interface ConnectRequest {
  readonly token?: string;
  /**
   * Bare user name: unverified, whatever the client typed (accepted as the user id in
   * development mode; otherwise only a claim the connect hook may check). The hook gets it as
   * `claimedUser`, never as `user`, which is only ever a verified id.
   */
  readonly user?: string;
  /**
   * A user id the front has verified itself (an XMPP SCRAM exchange against the keys of the
   * scram hook): the identity is this user, and the connect hook gets it as `user`.
   */
  readonly verifiedUser?: string;
  readonly client?: string;
  readonly transport: string;
}

/** A user's SCRAM-SHA-1 keys (RFC 5802 §3), from the scram hook. */
export interface ScramCredentials {
  readonly salt: Buffer;
  readonly iterations: number;
  readonly storedKey: Buffer;
  readonly serverKey: Buffer;
}

/** Bounds of the scram hook's answer: SHA-1 keys are 20 bytes; a salt of 8 to 64 bytes; iterations as RFC 5802 §5.1 and sane clients allow. */
const SCRAM_KEY_BYTES = 20;
const SCRAM_SALT_BYTES = { min: 8, max: 64 };
const SCRAM_ITERATIONS = { min: 4_096, max: 1_000_000 };

/** The scram hook's answer checked against those bounds; undefined when it is not a valid one. */
function scramCredentialsOf(body: Record<string, unknown>): ScramCredentials | undefined {
  const bytes = (v: unknown): Buffer | undefined => (typeof v === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(v) ? Buffer.from(v, 'base64') : undefined);
  const salt = bytes(body.salt);
  const storedKey = bytes(body.storedKey);
  const serverKey = bytes(body.serverKey);
  const { iterations } = body;
  if (!salt || salt.length < SCRAM_SALT_BYTES.min || salt.length > SCRAM_SALT_BYTES.max) return undefined;
  if (storedKey?.length !== SCRAM_KEY_BYTES || serverKey?.length !== SCRAM_KEY_BYTES) return undefined;
  if (!Number.isInteger(iterations) || (iterations as number) < SCRAM_ITERATIONS.min || (iterations as number) > SCRAM_ITERATIONS.max) return undefined;
  return { salt, iterations: iterations as number, storedKey, serverKey };
}

const JWT_RE = /^[\w-]+\.[\w-]+\.[\w-]*$/;

/** Close code for a failed connect: an admission refusal its own (3007), revoked/invalid token 3500, denied 3503, backend trouble 3002 (retry). */
export function connectCloseCode(err: HeraldError): number {
  // A refused admission (e.g. too many sessions of the user) carries its own close code.
  const admission = (err as { closeCode?: unknown }).closeCode;
  if (typeof admission === 'number') return admission;
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

/** Options of `new Backend()`. */
export interface BackendOptions {
  readonly config: HeraldConfig;
  readonly nodeId: string;
  readonly logger: Logger;
  readonly auth: Authenticator;
}

/**
 * The backend integration of one node, the policy side: what each hook's answer means for a
 * connection, subscription, publication or IM message, which decisions are cached (decision
 * cache, backend-cache.ts), token revocation and the webhook queue. Hook calls go through the
 * signed hook transport (backend-hooks.ts). Hooks and webhooks are off until `attach` gives a
 * transport.
 */
export class Backend {
  readonly config: BackendConfig;
  readonly revocations = new Revocations();
  readonly #nodeId: string;
  readonly #logger: Logger;
  readonly #auth: Authenticator;
  readonly #hooks: BackendHooks;
  readonly #cache: DecisionCache;
  readonly #wanted: ReadonlySet<WebhookEventType>;
  #transport: BackendTransport | undefined;
  #webhooks: WebhookQueue | undefined;
  #contactSync: ((user: string, contacts: string[]) => Promise<void>) | undefined;

  constructor(options: BackendOptions) {
    this.config = options.config.backend;
    this.#nodeId = options.nodeId;
    this.#logger = options.logger;
    this.#auth = options.auth;
    this.#hooks = new BackendHooks({ config: this.config, nodeId: options.nodeId, logger: options.logger });
    this.#cache = new DecisionCache(this.config.cacheTtlMs);
    this.#wanted = new Set(this.config.webhookEvents);
    options.auth.revoked = (identity) => this.revocations.isRevoked(identity);
  }

  /** Start calling the backend through `transport` (hooks when `url` is set, webhooks when `webhookUrl` is). */
  attach(transport: BackendTransport): void {
    this.#transport = transport;
    this.#hooks.attach(transport);
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
    return this.#hooks.has(hook);
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
    /** Whether `identity` comes from a verified token (not a development-mode bare name). */
    let verified = false;
    // With the connect hook, a token that is not a JWT (or with no local keys) is opaque: the backend judges it.
    if (req.verifiedUser !== undefined) {
      identity = { user: req.verifiedUser, claims: { sub: req.verifiedUser } };
      verified = true;
    } else if (req.token !== undefined && (!hook || (this.#auth.enabled && JWT_RE.test(req.token)))) {
      identity = await this.#auth.verify(req.token);
      verified = true;
    } else if (req.user !== undefined && (this.#auth.devMode || !hook)) identity = this.#auth.devIdentity(req.user);
    if (!hook) {
      if (identity) await this.#loadContacts(identity.user);
      return identity;
    }
    const key =
      'c:' +
      createHash('sha256')
        .update(`${req.token ?? ''}\0${req.user ?? ''}\0${req.verifiedUser ?? ''}`)
        .digest('base64');
    const answer = await this.#decideCached('connect', key, {
      client: req.client,
      transport: req.transport,
      token: req.token,
      // `user` is only ever a verified id; a bare name is the client's unproven claim.
      user: verified ? identity?.user : undefined,
      claimedUser: req.user,
      claims: verified ? identity?.claims : undefined,
    });
    if (answer === undefined) return identity; // failed open
    if (!answer.allow) throw new HeraldError('HERALD_ERR_BACKEND_DENIED', `Connection denied by the backend${reasonOf(answer)}`);
    const user = typeof answer.user === 'string' ? answer.user : identity?.user;
    if (user === undefined) return undefined;
    if (!USER_ID_RE.test(user)) throw new HeraldError('HERALD_ERR_BACKEND_UNAVAILABLE', 'The connect hook answered an invalid user id');
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
    const answer = await this.#decideCached('subscribe', `${queue ? 'q' : 's'}:${user}\0${channel}`, body);
    if (answer && !answer.allow) throw new HeraldError('HERALD_ERR_BACKEND_DENIED', `Subscription denied by the backend${reasonOf(answer)}`);
  }

  /**
   * Publish proxy: the backend accepts (`{"allow":true}`), modifies (`{"allow":true,"data":…}`)
   * or rejects (`{"allow":false}`) a client publication. Resolves with the data to publish.
   * Not cached: the answer depends on the data.
   */
  async proxyPublish(identity: Identity | undefined, client: string, channel: string, data: unknown): Promise<unknown> {
    if (!this.has('publish')) return data;
    const answer = await this.#hooks.decide('publish', { user: identity?.user, client, channel, data });
    if (!answer) return data;
    if (!answer.allow) throw new HeraldError('HERALD_ERR_BACKEND_DENIED', `Publication rejected by the backend${reasonOf(answer)}`);
    return 'data' in answer ? answer.data : data;
  }

  /** IM send proxy, like `proxyPublish` for an IM message (`to` or `conversation`). */
  async proxyImSend(user: string, client: string, target: { to?: string; conversation?: string }, data: unknown): Promise<unknown> {
    if (!this.has('imSend')) return data;
    const answer = await this.#hooks.decide('imSend', { user, client, to: target.to, conversation: target.conversation, data });
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
      res = await this.#hooks.post('rpc', { user: identity?.user, client, method, data }, this.config.rpcTimeoutMs);
    } catch (err) {
      throw this.#hooks.failure('rpc', started, err);
    }
    const body = parseObject(res.body);
    if (res.status < 200 || res.status > 299 || !body) {
      throw this.#hooks.failure('rpc', started, new Error(`status ${res.status}`));
    }
    this.#hooks.observe('rpc', body.error ? 'deny' : 'allow', started);
    if (isObject(body.error)) {
      const code = typeof body.error.code === 'number' && body.error.code >= 1000 && body.error.code <= 1999 ? body.error.code : 1000;
      const message = typeof body.error.message === 'string' ? body.error.message.slice(0, 256) : 'RPC failed';
      throw new BackendRpcError(code, message);
    }
    return body.result ?? null;
  }

  /**
   * A user's SCRAM-SHA-1 keys from the scram hook (cached like a decision: one call per user and
   * TTL, shared by concurrent logins): undefined when the application does not know the user
   * (404). Throws HERALD_ERR_BACKEND_UNAVAILABLE (temporary) when the hook fails or answers
   * something that is not a valid set of keys.
   */
  async scramCredentials(user: string): Promise<ScramCredentials | undefined> {
    const answer = await this.#cache.get(`x:${user}`, async () => {
      const started = Date.now();
      try {
        const res = await this.#hooks.post('scram', { user, mechanism: 'SCRAM-SHA-1' }, this.config.timeoutMs);
        if (res.status === 404) {
          this.#hooks.observe('scram', 'deny', started);
          return { found: false };
        }
        const body = parseObject(res.body);
        const credentials = res.status >= 200 && res.status <= 299 && body ? scramCredentialsOf(body) : undefined;
        if (!credentials) throw new Error(res.status >= 200 && res.status <= 299 ? 'answer is not a valid set of SCRAM-SHA-1 keys' : `status ${res.status}`);
        this.#hooks.observe('scram', 'allow', started);
        return { found: true, credentials };
      } catch (err) {
        const e = this.#hooks.failure('scram', started, err);
        this.#logger.warn({ user, err: e.message }, 'scram hook failed');
        throw e;
      }
    });
    return answer?.found ? answer.credentials : undefined;
  }

  /** Fetch and store a user's contact list (cached: one hook call per user and TTL, shared by concurrent logins). */
  async #loadContacts(user: string): Promise<void> {
    const sync = this.#contactSync;
    if (!this.has('contacts') || !sync) return;
    await this.#cache.get(`k:${user}`, async () => {
      const started = Date.now();
      try {
        const res = await this.#hooks.post('contacts', { user }, this.config.timeoutMs);
        const body = parseObject(res.body);
        if (res.status < 200 || res.status > 299 || !body || !Array.isArray(body.contacts)) throw new Error(`status ${res.status}`);
        const list = body.contacts.filter((c): c is string => typeof c === 'string' && USER_ID_RE.test(c) && c !== user);
        this.#hooks.observe('contacts', 'allow', started);
        await sync(user, list);
        return list;
      } catch (err) {
        // A contact list is not worth refusing a login for: keep the stored one.
        const e = this.#hooks.failure('contacts', started, err);
        this.#logger.warn({ user, err: e.message }, 'contacts hook failed');
        return undefined;
      }
    });
  }

  /** Ask a decision hook through the cache: one call per key and TTL, shared by concurrent askers (see BackendHooks.decide). */
  #decideCached(hook: HookName, key: string, body: Record<string, unknown>): Promise<HookAnswer | undefined> {
    return this.#cache.get(key, () => this.#hooks.decide(hook, body));
  }

  /** Forget cached decisions (all, or those of one user). */
  invalidate(user?: string): void {
    if (user === undefined) return this.#cache.invalidate();
    this.#cache.invalidate((key) => key.startsWith(`s:${user}\0`) || key === `k:${user}` || key === `x:${user}`);
  }
}

function reasonOf(a: HookAnswer): string {
  return typeof a.reason === 'string' && a.reason ? `: ${a.reason.slice(0, 200)}` : '';
}
