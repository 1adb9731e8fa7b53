/**
 * Configuration of the Nchan-compatible front: a list of routes, each the counterpart of one
 * nginx `location` with Nchan directives. Defaults equal Nchan's (buffer 10 messages, message
 * timeout 1 h, no subscriber timeout, every default subscriber type, CORS origin echoed).
 */
import { z } from 'zod';

/** Nchan's default message buffer length (`nchan_message_buffer_length`). */
export const DEFAULT_NCHAN_BUFFER_LENGTH = 10;
/** Nchan's default message timeout (`nchan_message_timeout 1h`). */
export const DEFAULT_NCHAN_MESSAGE_TIMEOUT_MS = 3_600_000;
/** Nchan's default longest channel id (`nchan_max_channel_id_length`). */
export const DEFAULT_NCHAN_MAX_CHANNEL_ID_LENGTH = 1024;
/** Default time a hook (authorize, upstream publish, callbacks) may take before 504. */
export const DEFAULT_NCHAN_HOOK_TIMEOUT_MS = 5_000;

/** Subscriber types, named as in `nchan_subscriber`. */
export const NCHAN_SUBSCRIBER_TYPES = ['websocket', 'eventsource', 'longpoll', 'intervalpoll', 'chunked', 'multipart-mixed', 'http-raw-stream'] as const;
/** One subscriber type. */
export type NchanSubscriberType = (typeof NCHAN_SUBSCRIBER_TYPES)[number];
/** Nchan's default `nchan_subscriber` types. */
export const DEFAULT_NCHAN_SUBSCRIBER_TYPES: readonly NchanSubscriberType[] = ['websocket', 'eventsource', 'longpoll', 'chunked', 'multipart-mixed'];

const url = z.string().url();

/** One route (an nginx location with Nchan directives). Omitted fields take Nchan's defaults. */
export const nchanRouteSchema = z
  .object({
    /** Path ending in `/` = prefix whose rest is the channel id; otherwise exact, id from `?id=`. */
    path: z.string().regex(/^\//, 'route paths start with /'),
    role: z.enum(['publisher', 'subscriber', 'pubsub', 'status']),
    types: z.array(z.enum(NCHAN_SUBSCRIBER_TYPES)).min(1).optional(),
    splitDelimiter: z.string().min(1).max(4).optional(),
    bufferLength: z.number().int().min(0).max(100_000).optional(),
    messageTimeoutMs: z.number().int().min(0).optional(),
    storeMessages: z.boolean().optional(),
    subscriberTimeoutMs: z.number().int().min(0).optional(),
    firstMessage: z
      .union([
        z.enum(['oldest', 'newest']),
        z
          .number()
          .int()
          .refine((n) => n !== 0, 'a message count is not 0'),
      ])
      .optional(),
    existingChannelsOnly: z.boolean().optional(),
    maxChannelIdLength: z.number().int().min(1).max(65_536).optional(),
    allowOrigin: z.array(z.string()).optional(),
    allowCredentials: z.boolean().optional(),
    authorizeUrl: url.optional(),
    subscribeUrl: url.optional(),
    unsubscribeUrl: url.optional(),
    publishUpstreamUrl: url.optional(),
    channelEvents: z.boolean().optional(),
    eventsourcePingIntervalMs: z.number().int().min(0).optional(),
    websocketPingIntervalMs: z.number().int().min(0).optional(),
    group: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .optional(),
  })
  .strict();

/** A configured route as given (read-only, like the whole resolved configuration). */
export type NchanRouteConfig = Readonly<Omit<z.infer<typeof nchanRouteSchema>, 'types' | 'allowOrigin'>> & {
  readonly types?: readonly NchanSubscriberType[];
  readonly allowOrigin?: readonly string[];
};

/** The default route set: `/pub/<id>`, `/sub/<id>[,<id>…]`, `/pubsub/<id>`, `/nchan_stub_status`. */
export const DEFAULT_NCHAN_ROUTES: readonly NchanRouteConfig[] = [
  { path: '/pub/', role: 'publisher', splitDelimiter: ',' },
  { path: '/sub/', role: 'subscriber', splitDelimiter: ',' },
  { path: '/pubsub/', role: 'pubsub' },
  { path: '/nchan_stub_status', role: 'status' },
];
