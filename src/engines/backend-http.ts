/**
 * The backend HTTP client engine: undici with a kept-alive connection pool per backend origin.
 * Timeouts cover the whole exchange (headers and body); a timeout rejects with TimeoutError so
 * core can tell it from an unreachable backend.
 */
import { Agent, request } from 'undici';
import type { BackendResponse, BackendTransport } from '../core/backend-hooks.js';
import { TimeoutError } from '../core/errors.js';

/** Largest backend answer read; a longer one is cut and the call fails. */
const MAX_RESPONSE_BYTES = 1_048_576;
/** Idle keep-alive time of pooled connections. */
const KEEP_ALIVE_MS = 30_000;

/** Options of `new HttpBackendTransport()`. */
export interface HttpBackendOptions {
  /** Connections per origin (default 32). */
  readonly connections?: number;
}

/** POSTs JSON to the backend over pooled keep-alive connections. */
export class HttpBackendTransport implements BackendTransport {
  readonly #agent: Agent;

  constructor(options: HttpBackendOptions = {}) {
    this.#agent = new Agent({ connections: options.connections ?? 32, keepAliveTimeout: KEEP_ALIVE_MS, pipelining: 1 });
  }

  async post(url: string, body: string, headers: Record<string, string>, timeoutMs: number): Promise<BackendResponse> {
    const signal = AbortSignal.timeout(timeoutMs);
    try {
      const res = await request(url, { method: 'POST', body, headers, dispatcher: this.#agent, signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_RESPONSE_BYTES) {
          res.body.destroy();
          throw new Error('backend answer too large');
        }
        chunks.push(chunk as Buffer);
      }
      return { status: res.statusCode, body: Buffer.concat(chunks).toString('utf8') };
    } catch (err) {
      if (signal.aborted || (err as { code?: string })?.code === 'UND_ERR_HEADERS_TIMEOUT' || (err as { code?: string })?.code === 'UND_ERR_BODY_TIMEOUT') {
        throw new TimeoutError('HERALD_ERR_BACKEND_TIMEOUT', `No answer from ${new URL(url).pathname} within ${timeoutMs} ms`, { cause: err });
      }
      throw err;
    }
  }

  close(): Promise<void> {
    return this.#agent.destroy();
  }
}
