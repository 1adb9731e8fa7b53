/**
 * Configuration of the backend integration (auth hooks, webhooks, client→backend RPC and
 * messages): the option group `backend.*`. Durations are integer milliseconds.
 */

/** Default time an auth or proxy hook may take before it counts as failed. */
export const DEFAULT_BACKEND_TIMEOUT_MS = 2_000;
/** Default time an RPC may take before the client gets HERALD_ERR_BACKEND_TIMEOUT. */
export const DEFAULT_BACKEND_RPC_TIMEOUT_MS = 5_000;
/** Default lifetime of a cached connect/subscribe decision or contact list. */
export const DEFAULT_BACKEND_CACHE_TTL_MS = 10_000;
/** Default most events per webhook request. */
export const DEFAULT_WEBHOOK_BATCH_SIZE = 100;
/** Default longest wait before a non-full webhook batch is sent. */
export const DEFAULT_WEBHOOK_INTERVAL_MS = 100;
/** Default most webhook events held in memory; more are dropped (counted and logged). */
export const DEFAULT_WEBHOOK_QUEUE_MAX = 10_000;
/** Default most bytes of system (non-client) webhook events held in memory (16 MiB). */
export const DEFAULT_WEBHOOK_QUEUE_MAX_BYTES = 16_777_216;
/** Default most bytes of client events (`client.message`) held in memory (4 MiB). */
export const DEFAULT_WEBHOOK_CLIENT_QUEUE_MAX_BYTES = 4_194_304;

/** Webhook event types. */
export const WEBHOOK_EVENTS = ['connect', 'disconnect', 'subscribe', 'unsubscribe', 'presence', 'im.message', 'im.offline_unread', 'client.message'] as const;
/** One webhook event type. */
export type WebhookEventType = (typeof WEBHOOK_EVENTS)[number];
