/**
 * The backend's signed hook transport: which hooks are configured, how a hook request is built
 * and signed (`X-Herald-Signature` over `<timestamp>.<body>`), how an answer becomes a decision
 * (`{"allow":…}`; 401/403 are denials; anything else unusable is a failure), fail-open or
 * fail-closed on failure, the errors clients see (HERALD_ERR_BACKEND_TIMEOUT / _UNAVAILABLE) and
 * the `herald:backend-hook` diagnostics event per call. The HTTP client itself is an engine
 * (`BackendTransport`, engines/backend-http.ts). Protocol: docs/backend.md.
 */
import { createHmac } from 'node:crypto';
import diagnostics from 'node:diagnostics_channel';
import type { BackendConfig } from './config.js';
import { HeraldError, TimeoutError, toHeraldError } from './errors.js';
import type { Logger } from './logger.js';
import { parsePeerJson } from '../protocol/json.js';

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
export type HookName = 'connect' | 'subscribe' | 'publish' | 'imSend' | 'contacts' | 'scram' | 'rpc';

/** A decision hook's answer: `allow`, an optional `reason`, and whatever else the hook returns. */
export interface HookAnswer {
  readonly allow: boolean;
  readonly reason?: string;
  readonly [k: string]: unknown;
}

/** Signature header value over `<timestamp>.<body>`: `sha256=<hex>`. */
export function signBody(secret: string, timestamp: number, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

/** Options of `new BackendHooks()`. */
export interface BackendHooksOptions {
  readonly config: BackendConfig;
  readonly nodeId: string;
  readonly logger: Logger;
}

/** Calls the backend's hooks for one node. Every hook is off until `attach` gives a transport. */
export class BackendHooks {
  readonly #config: BackendConfig;
  readonly #nodeId: string;
  readonly #logger: Logger;
  #transport: BackendTransport | undefined;

  constructor(options: BackendHooksOptions) {
    this.#config = options.config;
    this.#nodeId = options.nodeId;
    this.#logger = options.logger;
  }

  /** Start calling the backend through `transport`. */
  attach(transport: BackendTransport): void {
    this.#transport = transport;
  }

  /** Whether a hook is configured (and a transport attached). */
  has(hook: HookName): boolean {
    return this.#transport !== undefined && this.#config.url !== undefined && this.#path(hook) !== '';
  }

  /**
   * Ask a decision hook. Resolves with the answer, or undefined when the hook failed and
   * `failOpen` is set; throws a backend error when it failed and the policy is fail-closed.
   * 401/403 answers are denials; other non-2xx answers and unparsable bodies are failures.
   */
  async decide(hook: HookName, body: Record<string, unknown>): Promise<HookAnswer | undefined> {
    const started = Date.now();
    let answer: HookAnswer;
    try {
      const res = await this.post(hook, body, this.#config.timeoutMs);
      const parsed = parseObject(res.body);
      if (res.status === 401 || res.status === 403) answer = { allow: false, reason: typeof parsed?.reason === 'string' ? parsed.reason : undefined };
      else if (res.status >= 200 && res.status <= 299 && parsed && typeof parsed.allow === 'boolean') answer = parsed as HookAnswer;
      else throw new Error(res.status >= 200 && res.status <= 299 ? 'answer without a boolean "allow"' : `status ${res.status}`);
    } catch (err) {
      const e = this.failure(hook, started, err);
      if (this.#config.failOpen) {
        this.#logger.warn({ hook, err: e.message }, 'backend hook failed; allowing (failOpen)');
        return undefined;
      }
      this.#logger.warn({ hook, err: e.message }, 'backend hook failed; denying');
      throw e;
    }
    this.observe(hook, answer.allow ? 'allow' : 'deny', started);
    return answer;
  }

  /** POST a signed hook request; rejects when no backend is configured or the transport fails. */
  post(hook: HookName, body: Record<string, unknown>, timeoutMs: number): Promise<BackendResponse> {
    const transport = this.#transport;
    if (!transport || !this.#config.url) return Promise.reject(new Error('no backend configured'));
    const text = JSON.stringify({ hook: hook === 'imSend' ? 'im.send' : hook, node: this.#nodeId, ...body });
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.#config.secret) {
      const ts = Math.floor(Date.now() / 1000);
      headers['x-herald-timestamp'] = String(ts);
      headers['x-herald-signature'] = signBody(this.#config.secret, ts, text);
    }
    return transport.post(this.#config.url.replace(/\/$/, '') + this.#path(hook), text, headers, timeoutMs);
  }

  /** Map a failed call to the client-facing error and record it. */
  failure(hook: HookName, started: number, err: unknown): HeraldError {
    const timeout = err instanceof TimeoutError;
    this.observe(hook, timeout ? 'timeout' : 'error', started);
    if (err instanceof HeraldError && !timeout) return toHeraldError(err);
    const what = hook === 'imSend' ? 'im.send' : hook;
    return timeout
      ? new HeraldError('HERALD_ERR_BACKEND_TIMEOUT', `The backend did not answer the ${what} hook in time`)
      : new HeraldError('HERALD_ERR_BACKEND_UNAVAILABLE', `The backend failed the ${what} hook: ${String((err as Error)?.message ?? err).slice(0, 100)}`);
  }

  /** Publish a call's outcome and duration on `herald:backend-hook`. */
  observe(hook: HookName, outcome: BackendHookEvent['outcome'], started: number): void {
    if (backendHookEvents.hasSubscribers) backendHookEvents.publish({ node: this.#nodeId, hook, outcome, ms: Date.now() - started } satisfies BackendHookEvent);
  }

  #path(hook: HookName): string {
    const c = this.#config;
    switch (hook) {
      case 'connect':
        return c.connectPath;
      case 'subscribe':
        return c.subscribePath;
      case 'publish':
        return c.publishPath;
      case 'imSend':
        return c.imSendPath;
      case 'contacts':
        return c.contactsPath;
      case 'scram':
        return c.scramPath;
      case 'rpc':
        return c.rpcPath;
    }
  }
}

/** Whether a value is a plain JSON object. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The backend's answer as an object; not JSON, not an object or nested too deep is no answer. */
export function parseObject(text: string): Record<string, unknown> | undefined {
  const r = parsePeerJson(text);
  return r.ok && isObject(r.value) ? r.value : undefined;
}
