/**
 * The configuration schema: one declarative table of options with defaults, units and docs.
 * From it come the validating zod schema (unknown keys rejected, every error reported at once),
 * the `HERALD_*` environment variable names, the CLI flags and `herald --help`.
 * Durations are integer milliseconds, sizes are bytes.
 */
import { z } from 'zod';
import { DEFAULT_NCHAN_HOOK_TIMEOUT_MS, DEFAULT_NCHAN_ROUTES, nchanRouteSchema } from './config-nchan.js';
import * as B from './config-backend.js';
import * as S from './config-security.js';
import { userIdSchema } from './user-id.js';

/** Default listen port. */
export const DEFAULT_PORT = 8080;
/** Default listen host (loopback only). */
export const DEFAULT_HOST = '127.0.0.1';
/** Default WebSocket ping interval. */
export const DEFAULT_PING_INTERVAL_MS = 25_000;
/** Default long-poll wait before answering with nothing new. */
export const DEFAULT_LONG_POLL_TIMEOUT_MS = 30_000;
/** Default SSE / HTTP-stream keep-alive comment interval. */
export const DEFAULT_STREAM_KEEPALIVE_MS = 15_000;
/** Default time a client has to send a whole HTTP request (headers and body). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** Default send timeout: a socket with unsent bytes that made no progress this long is cut. */
export const DEFAULT_SEND_TIMEOUT_MS = 30_000;
/** Default largest inbound frame or HTTP body. */
export const DEFAULT_MAX_MESSAGE_BYTES = 65_536;
/** Default per-connection outbound buffer before a slow consumer is dropped. */
export const DEFAULT_MAX_OUTBOUND_BYTES = 1_048_576;
/** Default largest STOMP frame. */
export const DEFAULT_STOMP_MAX_FRAME_BYTES = 131_072;
/** Default PostgreSQL schema of the IM store. */
export const DEFAULT_DATABASE_SCHEMA = 'herald';
/** Default connections per node in the PostgreSQL pool. */
export const DEFAULT_DATABASE_POOL_SIZE = 10;
/** Default largest XMPP stanza, characters. */
export const DEFAULT_XMPP_MAX_STANZA_SIZE = 65_536;
/** Default cap on how long a BOSH request is held (XEP-0124 `wait`). */
export const DEFAULT_XMPP_BOSH_MAX_WAIT_MS = 60_000;
/** Default time a BOSH session lives with no request open (XEP-0124 `inactivity`). */
export const DEFAULT_XMPP_BOSH_INACTIVITY_MS = 60_000;
/** Default prefix of every Redis key and pub/sub channel of Herald. */
export const DEFAULT_REDIS_PREFIX = 'herald:';
/** Default STOMP heart-beat interval. */
export const DEFAULT_STOMP_HEARTBEAT_MS = 10_000;
/** Default node heartbeat interval in the Redis node registry; an entry lives three intervals. */
export const DEFAULT_NODE_HEARTBEAT_MS = 2_000;
/** Default lifetime of a Redis session-registry entry without a refresh. */
export const DEFAULT_SESSION_TTL_MS = 30_000;
/** Default group changes (create, add, remove, leave, role, accept) per second per user. */
export const DEFAULT_IM_GROUP_OPS_PER_SECOND = 2;
/** Default most groups one user may be a member of (created ones included). */
export const DEFAULT_IM_MAX_GROUPS_PER_USER = 500;
/** Default most pending group invitations one user may hold. */
export const DEFAULT_IM_MAX_PENDING_INVITES = 100;
/** Default most contacts of one user. */
export const DEFAULT_IM_MAX_CONTACTS = 1_000;
/** Most STOMP work queues per node. */
export const DEFAULT_STOMP_MAX_QUEUES = 1_000;
/** Most bytes held by the STOMP work queues of one node (64 MiB). */
export const DEFAULT_STOMP_MAX_QUEUED_BYTES = 67_108_864;

const channelPolicyFields = {
  historySize: z.number().int().min(0).max(1_000_000),
  historyTtlMs: z.number().int().min(0),
  allowPublish: z.boolean(),
  joinLeave: z.boolean(),
  requireToken: z.boolean(),
};

/** Per-namespace channel policy override; missing fields come from `channels`. */
const namespaceSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'namespace names use A-Z a-z 0-9 _ . - (1-64 chars)'),
    ...Object.fromEntries(Object.entries(channelPolicyFields).map(([k, v]) => [k, v.optional()])),
  })
  .strict();

/** One configuration option. */
export interface OptionSpec<P extends string = string, S extends z.ZodType = z.ZodType> {
  /** Dotted path in the config object, e.g. `limits.maxConnections`. */
  readonly path: P;
  readonly schema: S;
  readonly default: unknown;
  /** One line for `--help` and the README. */
  readonly doc: string;
}

const hookPath = z.string().regex(/^(\/[^?#]*)?$/, 'a path starting with / (or "" = off)');

/** An option; its default must be a value of its schema's output type. */
const opt = <P extends string, S extends z.ZodType>(path: P, schema: S, def: DeepReadonly<z.output<S>> | undefined, doc: string): OptionSpec<P, S> => ({
  path,
  schema,
  default: def,
  doc,
});

/** Every option Herald understands. */
export const OPTIONS = [
  opt('host', z.string().min(1), DEFAULT_HOST, 'Address to listen on. Anything but loopback requires apiKey.'),
  opt('port', z.number().int().min(0).max(65535), DEFAULT_PORT, 'TCP port for every transport, the API and the pages (0 = any free port).'),
  opt('dataDir', z.string().min(1), './data', 'Directory for embedded data files (SQLite IM store; token revocations of a single node).'),
  opt('apiKey', z.string().min(16).optional(), undefined, 'Key for the server API (`Authorization: apikey <key>`); required when host is not loopback.'),
  opt(
    'dev',
    z.boolean(),
    false,
    'Development mode: accepts a bare user name as identity and trusts loopback clients. Refused together with token keys or a non-loopback host unless devAllowUnsafe. Never in production.',
  ),
  opt('devAllowUnsafe', z.boolean(), false, 'Allow development mode together with token keys or on a non-loopback host (a deliberate, logged exception).'),
  opt(
    'trustLoopback',
    z.boolean().optional(),
    undefined,
    'Loopback clients may use /api, /admin, /metrics and Nchan publishing without the API key (default: on in development mode, off otherwise). Never with a same-host proxy that is not in trustedProxies.',
  ),
  opt(
    'trustedProxies',
    z.array(S.addressOrCidr),
    [],
    'Proxy addresses or CIDRs (e.g. ["127.0.0.1","10.0.0.0/8"]) whose X-Forwarded-For is believed; the client address is the last hop not in this list.',
  ),
  opt(
    'allowedHosts',
    z.array(S.hostPattern),
    [],
    'Host header names the API, /admin and /metrics answer (DNS-rebinding guard); "*.example.com" matches subdomains, "*" any. Always allowed: localhost, loopback addresses, the listen host and cluster.advertiseUrl\'s host; on a wildcard host also this machine\'s addresses and hostname.',
  ),
  opt(
    'allowedOrigins',
    z.array(S.originPattern),
    [],
    'Browser origins (e.g. "https://app.example.com", "*" = any) allowed to open WebSockets and to read CORS answers of the client transports and Nchan; same-origin pages and clients sending no Origin are always allowed.',
  ),
  opt(
    'tls.certFile',
    z.string(),
    '',
    'PEM certificate chain file: serve HTTPS and WSS on the same port ("" = plain HTTP). Reloaded when the file changes or on SIGHUP.',
  ),
  opt('tls.keyFile', z.string(), '', 'PEM private key file of tls.certFile.'),
  opt('tls.watchIntervalMs', z.number().int().min(50), S.DEFAULT_TLS_WATCH_INTERVAL_MS, 'How often the certificate and key files are checked for changes.'),
  opt('logLevel', z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info', 'Log level.'),
  opt(
    'logFormat',
    z.enum(['auto', 'json', 'pretty']),
    'auto',
    'Log format: json = one JSON object per line; pretty = coloured lines and a startup summary for people; auto = pretty in development mode on a terminal, else json.',
  ),
  opt('auth.hmacSecret', z.string().min(16).optional(), undefined, 'HS256 secret for connection tokens (JWT).'),
  opt('auth.publicKeys', z.array(z.string()).default([]), [], 'PEM public keys (RS256/ES256) for connection tokens.'),
  opt('auth.jwksFile', z.string().optional(), undefined, 'Path to a JWKS file with token verification keys.'),
  opt(
    'auth.jwksUrl',
    z
      .string()
      .regex(/^https?:\/\//, 'expected an http:// or https:// URL')
      .optional(),
    undefined,
    'URL of a JWKS (e.g. https://issuer/.well-known/jwks.json): keys fetched on first use, cached 10 min, fetched again for an unknown key id (at most every 30 s).',
  ),
  opt('auth.audience', z.string().optional(), undefined, 'Required `aud` claim of tokens, if set.'),
  opt('auth.issuer', z.string().optional(), undefined, 'Required `iss` claim of tokens, if set.'),
  opt('channels.historySize', channelPolicyFields.historySize, 100, 'Default: publications kept per channel (0 = no history).'),
  opt('channels.historyTtlMs', channelPolicyFields.historyTtlMs, 300_000, 'Default: how long a publication stays in history (0 = forever).'),
  opt('channels.allowPublish', channelPolicyFields.allowPublish, false, 'Default: whether clients may publish (the server API always may).'),
  opt('channels.joinLeave', channelPolicyFields.joinLeave, false, 'Default: send join/leave events to subscribers.'),
  opt('channels.requireToken', channelPolicyFields.requireToken, false, 'Default: subscribing needs an authenticated connection (a token).'),
  opt(
    'namespaces',
    z.array(namespaceSchema).default([]),
    [],
    'Per-namespace overrides of the channel policy: [{"name":"news","historySize":10,...}]. `news:sport` is in namespace `news`.',
  ),
  opt('limits.maxConnections', z.number().int().min(1), 100_000, 'Connections this process accepts; more are refused with 3007.'),
  opt(
    'limits.maxMessageBytes',
    z
      .number()
      .int()
      .min(64)
      .max(64 * 1024 * 1024),
    DEFAULT_MAX_MESSAGE_BYTES,
    'Largest inbound frame, command or publish body in bytes.',
  ),
  opt('limits.maxChannelsPerConnection', z.number().int().min(1).max(10_000), 128, 'Subscriptions one connection may hold.'),
  opt('limits.maxChannelNameLength', z.number().int().min(1).max(1024), 255, 'Longest channel name in bytes.'),
  opt(
    'limits.maxOutboundBytes',
    z.number().int().min(1024),
    DEFAULT_MAX_OUTBOUND_BYTES,
    'Per-connection unsent bytes before a slow consumer is disconnected (3004).',
  ),
  opt('limits.maxHistoryRead', z.number().int().min(1).max(100_000), 1000, 'Most publications returned by one history or recovery read.'),
  opt(
    'limits.maxConnectionsPerIp',
    z.number().int().min(0),
    S.DEFAULT_MAX_CONNECTIONS_PER_IP,
    'Open connections one client address may hold (0 = no cap); more are refused (close 3007 / HTTP 429). Behind NAT raise it.',
  ),
  opt(
    'limits.connectionsPerIpPerSecond',
    z.number().int().min(0),
    S.DEFAULT_CONNECTIONS_PER_IP_PER_SECOND,
    'New connections one client address may open per second, burst twice that (0 = no limit); more are refused (close 3007 / HTTP 429).',
  ),
  opt(
    'limits.maxConnectionsPerUser',
    z.number().int().min(0),
    S.DEFAULT_MAX_CONNECTIONS_PER_USER,
    'Open sessions one user may hold on this node (0 = no cap); more are refused at connect (close 3007 / HTTP 429).',
  ),
  opt(
    'limits.perIpExempt',
    z.array(S.addressOrCidr),
    ['127.0.0.0/8', '::1'],
    'Client addresses or CIDRs the per-IP cap and rate do not apply to (default loopback: local tools, benchmarks).',
  ),
  opt('limits.commandsPerSecond', z.number().int().min(1), 1000, 'Commands per second one connection may send before 3505.'),
  opt('timing.pingIntervalMs', z.number().int().min(50), DEFAULT_PING_INTERVAL_MS, 'Heartbeat interval; a silent connection is dropped within two intervals.'),
  opt('timing.connectTimeoutMs', z.number().int().min(100), 10_000, 'Time a WebSocket client has to send `connect`.'),
  opt(
    'timing.longPollTimeoutMs',
    z.number().int().min(100),
    DEFAULT_LONG_POLL_TIMEOUT_MS,
    'How long a long-poll waits for a publication before answering empty.',
  ),
  opt('timing.streamKeepAliveMs', z.number().int().min(100), DEFAULT_STREAM_KEEPALIVE_MS, 'Keep-alive interval for SSE and HTTP streaming.'),
  opt(
    'timing.requestTimeoutMs',
    z.number().int().min(100),
    DEFAULT_REQUEST_TIMEOUT_MS,
    'Time a client has to send a whole HTTP request (headers and body); later: 408 and the connection closed.',
  ),
  opt(
    'timing.sendTimeoutMs',
    z.number().int().min(100),
    DEFAULT_SEND_TIMEOUT_MS,
    'A socket (HTTP answer, stream or WebSocket) holding unsent bytes that its peer has not read for this long is cut.',
  ),
  opt('nchan.enabled', z.boolean(), true, 'Serve the Nchan-compatible HTTP pub/sub routes (see docs/nchan.md).'),
  opt('nchan.routes', z.array(nchanRouteSchema), DEFAULT_NCHAN_ROUTES, 'Nchan routes, one per nginx location: [{"path":"/pub/","role":"publisher"},...].'),
  opt(
    'nchan.publishAccess',
    z.enum(['loopback-or-key', 'key', 'any']),
    'loopback-or-key',
    'Who may publish to, delete and read info of Nchan channels: loopback-or-key = as the server API (the API key when set, else loopback clients with trustLoopback), key = API key only, any = anyone.',
  ),
  opt('nchan.hookTimeoutMs', z.number().int().min(1), DEFAULT_NCHAN_HOOK_TIMEOUT_MS, 'Time an Nchan hook (authorize, upstream publish) may take before 504.'),
  opt('timing.shutdownTimeoutMs', z.number().int().min(0), 5_000, 'Longest graceful shutdown before remaining connections are cut.'),
  opt('im.storePath', z.string(), '', 'SQLite file of the IM store ("" = <dataDir>/herald.db); unused when database.url is set.'),
  opt(
    'im.storeSync',
    z.enum(['full', 'normal']),
    'full',
    'SQLite synchronous mode of the IM store: full = fsync every group commit, normal = survive process crash only.',
  ),
  opt(
    'im.maxPayloadBytes',
    z
      .number()
      .int()
      .min(16)
      .max(16 * 1024 * 1024),
    16_384,
    'Largest IM message payload (JSON text) in bytes.',
  ),
  opt('im.recallWindowMs', z.number().int().min(0), 120_000, 'How long after sending a message its author may recall it.'),
  opt('im.maxGroupSize', z.number().int().min(2), 2_000, 'Most members of a group.'),
  opt('im.largeGroupThreshold', z.number().int().min(2), 200, 'Groups with more members are read from the group timeline instead of copied into every inbox.'),
  opt(
    'im.redeliveryTimeoutMs',
    z.number().int().min(50),
    10_000,
    'Unacknowledged inbox messages are re-sent after this long (doubling per attempt, at most 60 s).',
  ),
  opt('im.sendsPerSecond', z.number().int().min(1), 50, 'IM sends per second per user (burst twice this) before HERALD_ERR_TOO_MANY_REQUESTS.'),
  opt('im.typingPerSecond', z.number().int().min(1), 2, 'Typing notifications per second per user (burst twice this).'),
  opt(
    'im.groupOpsPerSecond',
    z.number().int().min(1),
    DEFAULT_IM_GROUP_OPS_PER_SECOND,
    'Group changes (create, add, remove, leave, role, accept) per second per user (burst twice this) before HERALD_ERR_TOO_MANY_REQUESTS; the server API is not limited.',
  ),
  opt(
    'im.maxGroupsPerUser',
    z.number().int().min(1),
    DEFAULT_IM_MAX_GROUPS_PER_USER,
    'Most groups a user may be a member of: creating, being added or accepting beyond it is refused with HERALD_ERR_IM_TOO_MANY_GROUPS (the server API may go past it).',
  ),
  opt(
    'im.maxPendingInvites',
    z.number().int().min(1),
    DEFAULT_IM_MAX_PENDING_INVITES,
    'Most pending group invitations a user holds; further invitations to that user are not made (left out of `invited`).',
  ),
  opt(
    'im.maxContacts',
    z.number().int().min(1),
    DEFAULT_IM_MAX_CONTACTS,
    'Most contacts per user: im.contacts.add beyond it is refused with HERALD_ERR_IM_TOO_MANY_CONTACTS.',
  ),
  opt(
    'im.presenceGraceMs',
    z.number().int().min(0),
    5_000,
    'A user with no live session for this long is offline (covers long-poll gaps and quick reconnects).',
  ),
  opt('im.syncLimit', z.number().int().min(1).max(10_000), 500, 'Most messages returned by one im.sync or im.history read.'),
  opt('stomp.enabled', z.boolean(), true, 'Serve STOMP 1.2 over WebSocket (see docs/stomp.md).'),
  opt('stomp.path', z.string().regex(/^\/[^?#]*$/, 'a URL path starting with /'), '/stomp', 'URL path of the STOMP WebSocket endpoint.'),
  opt(
    'stomp.maxFrameBytes',
    z
      .number()
      .int()
      .min(256)
      .max(64 * 1024 * 1024),
    DEFAULT_STOMP_MAX_FRAME_BYTES,
    'Largest STOMP frame (command, headers and body) in bytes; bodies are also capped by limits.maxMessageBytes.',
  ),
  opt('stomp.maxHeaders', z.number().int().min(1).max(1_000), 64, 'Most headers in one STOMP frame.'),
  opt(
    'stomp.heartbeatMs',
    z.number().int().min(0),
    DEFAULT_STOMP_HEARTBEAT_MS,
    'STOMP heart-beat interval offered and asked for (0 = none); a client silent for twice the negotiated interval is dropped.',
  ),
  opt('stomp.queueMaxLength', z.number().int().min(1), 10_000, 'Most messages waiting in one /queue/<name> work queue (in-process, per node).'),
  opt('xmpp.enabled', z.boolean(), true, 'Serve XMPP client streams over WebSocket and BOSH (see docs/xmpp.md).'),
  opt('xmpp.path', z.string().regex(/^\/[^?#]*$/, 'a URL path starting with /'), '/xmpp-websocket', 'URL path of the XMPP WebSocket endpoint (RFC 7395).'),
  opt(
    'xmpp.tcpPort',
    z.number().int().min(0).max(65535).optional(),
    undefined,
    'TCP port of plain XMPP client streams (usually 5222; 0 = any free port); unset = off.',
  ),
  opt('xmpp.domain', z.string().regex(/^[A-Za-z0-9.-]{1,253}$/, 'a domain name'), 'localhost', 'XMPP domain of the users: user ids become JIDs user@domain.'),
  opt(
    'xmpp.maxStanzaSize',
    z
      .number()
      .int()
      .min(1024)
      .max(16 * 1024 * 1024),
    DEFAULT_XMPP_MAX_STANZA_SIZE,
    'Largest XMPP stanza in characters; larger ends the stream with policy-violation.',
  ),
  opt('xmpp.maxDepth', z.number().int().min(2).max(256), 32, 'Deepest element nesting inside an XMPP stanza.'),
  opt('xmpp.maxAttributes', z.number().int().min(4).max(1_000), 64, 'Most attributes on one XMPP element.'),
  opt(
    'xmpp.boshPath',
    z.string().regex(/^(\/[^?#]*)?$/, 'a URL path starting with / (or "" = off)'),
    '/http-bind',
    'URL path of XMPP over BOSH (XEP-0124/0206) on the HTTP port ("" = off).',
  ),
  opt(
    'xmpp.boshMaxWaitMs',
    z.number().int().min(1_000).max(3_600_000),
    DEFAULT_XMPP_BOSH_MAX_WAIT_MS,
    "Longest time a BOSH request is held open (the client's wait is capped by it; whole seconds on the wire).",
  ),
  opt(
    'xmpp.boshInactivityMs',
    z.number().int().min(1_000).max(3_600_000),
    DEFAULT_XMPP_BOSH_INACTIVITY_MS,
    'A BOSH session with no request open for this long ends (announced as inactivity, in seconds).',
  ),
  opt(
    'xmpp.tcpPingIntervalMs',
    z.number().int().min(0),
    0,
    "XEP-0199 pings to an XMPP-over-TCP client silent this long, dropped after twice that (0 = none: the kernel's TCP keepalive judges the connection, see xmpp.tcpKeepAliveMs, as in ejabberd and Prosody by default).",
  ),
  opt(
    'xmpp.tcpKeepAliveMs',
    z.number().int().min(0),
    0,
    "First TCP keepalive probe after this much silence on an XMPP-over-TCP connection, then one a second, the connection dropped after ten unanswered (0 = the host's keepalive settings: net.ipv4.tcp_keepalive_time, two hours by default, then tcp_keepalive_intvl × tcp_keepalive_probes, as ejabberd's listeners).",
  ),
  opt(
    'xmpp.resumeTimeoutMs',
    z.number().int().min(0),
    300_000,
    'How long a resumable XMPP session (XEP-0198) waits for its client after the connection dropped.',
  ),
  opt(
    'stomp.maxQueues',
    z.number().int().min(1),
    DEFAULT_STOMP_MAX_QUEUES,
    'Most /queue/<name> work queues one node holds at once (with messages or consumers).',
  ),
  opt(
    'stomp.maxQueuedBytes',
    z.number().int().min(1024),
    DEFAULT_STOMP_MAX_QUEUED_BYTES,
    'Most bytes all work queues of one node hold (waiting and unacknowledged messages, 64 bytes of overhead each).',
  ),
  opt(
    'redis.url',
    z
      .string()
      .regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL')
      .optional(),
    undefined,
    'Redis URL (e.g. redis://127.0.0.1:6379): use Redis for channel fan-out and history, so several nodes and workers form one cluster. Flag alias: --redis.',
  ),
  opt(
    'redis.prefix',
    z.string().min(1).max(64),
    DEFAULT_REDIS_PREFIX,
    'Prefix of every Redis key and pub/sub channel; separates deployments sharing one Redis.',
  ),
  opt(
    'database.url',
    z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'expected a postgres:// or postgresql:// URL')
      .optional(),
    undefined,
    'PostgreSQL URL with its user (e.g. postgres://herald@127.0.0.1:5432/herald): keep the IM store there instead of SQLite, so several nodes share it. Flag alias: --database.',
  ),
  opt(
    'database.schema',
    z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, 'a schema name: letters, digits and _ (1-63 chars, not starting with a digit)'),
    DEFAULT_DATABASE_SCHEMA,
    'PostgreSQL schema of the IM tables; created and migrated when the IM store opens (first IM use).',
  ),
  opt('database.poolSize', z.number().int().min(1).max(1_000), DEFAULT_DATABASE_POOL_SIZE, 'Most PostgreSQL connections one node (worker) holds.'),
  opt(
    'backend.url',
    z
      .string()
      .regex(/^https?:\/\//, 'expected an http:// or https:// URL')
      .optional(),
    undefined,
    'Base URL of the backend hooks (see docs/backend.md); unset = no hooks.',
  ),
  opt('backend.connectPath', hookPath, '', 'Connect hook path under backend.url ("" = off): allow/deny a connection, user id and claims.'),
  opt('backend.subscribePath', hookPath, '', 'Subscribe hook path ("" = off): may this user subscribe to this channel.'),
  opt('backend.publishPath', hookPath, '', 'Publish proxy hook path ("" = off): accept, modify or reject a client publication.'),
  opt('backend.imSendPath', hookPath, '', 'IM send proxy hook path ("" = off): accept, modify or reject an IM message.'),
  opt('backend.contactsPath', hookPath, '', 'Contacts hook path ("" = off): a user\'s contact list, fetched at login and cached.'),
  opt(
    'backend.scramPath',
    hookPath,
    '',
    'SCRAM hook path ("" = off): a user\'s SCRAM-SHA-1 salt, iterations, stored and server keys, so XMPP clients can log in with SCRAM-SHA-1 (docs/xmpp.md).',
  ),
  opt('backend.rpcPath', hookPath, '/rpc', 'Path the `rpc` command is forwarded to ("" = off).'),
  opt('backend.timeoutMs', z.number().int().min(1), B.DEFAULT_BACKEND_TIMEOUT_MS, 'Time a hook may take before it counts as failed.'),
  opt(
    'backend.rpcTimeoutMs',
    z.number().int().min(1),
    B.DEFAULT_BACKEND_RPC_TIMEOUT_MS,
    'Time an RPC may take before the client gets HERALD_ERR_BACKEND_TIMEOUT.',
  ),
  opt(
    'backend.cacheTtlMs',
    z.number().int().min(0),
    B.DEFAULT_BACKEND_CACHE_TTL_MS,
    'How long connect/subscribe decisions and contact lists are cached (0 = no cache).',
  ),
  opt('backend.failOpen', z.boolean(), false, 'Allow when a hook fails or times out (default: deny, fail closed).'),
  opt('backend.maxConnections', z.number().int().min(1).max(1024), 32, 'Kept-alive HTTP connections per backend origin.'),
  opt(
    'backend.webhookUrl',
    z
      .string()
      .regex(/^https?:\/\//, 'expected an http:// or https:// URL')
      .optional(),
    undefined,
    'URL webhook batches are POSTed to; unset = no webhooks.',
  ),
  opt('backend.secret', z.string().min(16).optional(), undefined, 'HMAC-SHA256 key of X-Herald-Signature on webhooks and hook requests.'),
  opt('backend.webhookEvents', z.array(z.enum(B.WEBHOOK_EVENTS)), [...B.WEBHOOK_EVENTS], 'Webhook event types sent.'),
  opt('backend.webhookBatchSize', z.number().int().min(1).max(10_000), B.DEFAULT_WEBHOOK_BATCH_SIZE, 'Most events per webhook request.'),
  opt('backend.webhookIntervalMs', z.number().int().min(0), B.DEFAULT_WEBHOOK_INTERVAL_MS, 'Longest wait before a non-full webhook batch is sent.'),
  opt(
    'backend.webhookQueueMax',
    z.number().int().min(2),
    B.DEFAULT_WEBHOOK_QUEUE_MAX,
    'Most webhook events held (client events at most half); more are dropped (counted in metrics, logged).',
  ),
  opt(
    'backend.webhookQueueMaxBytes',
    z.number().int().min(1024),
    B.DEFAULT_WEBHOOK_QUEUE_MAX_BYTES,
    'Most bytes of system webhook events held (serialized); more are dropped.',
  ),
  opt(
    'backend.webhookClientQueueMaxBytes',
    z.number().int().min(1024),
    B.DEFAULT_WEBHOOK_CLIENT_QUEUE_MAX_BYTES,
    'Most bytes of client.message events held, apart from system events; a send beyond it gets HERALD_ERR_TOO_MANY_REQUESTS.',
  ),
  opt('backend.webhookRetryMinMs', z.number().int().min(1), 250, 'First retry delay of a failed webhook batch (doubles per attempt, with jitter).'),
  opt('backend.webhookRetryMaxMs', z.number().int().min(1), 30_000, 'Longest retry delay of a failed webhook batch.'),
  opt('backend.webhookTimeoutMs', z.number().int().min(1), 5_000, 'Time a webhook request may take.'),
  opt('backend.systemUser', userIdSchema, 'system', 'Sender id of IM messages the server API sends as the system.'),
  opt(
    'cluster.advertiseUrl',
    z.string().url().optional(),
    undefined,
    'URL clients use to reach this node, announced to the dispatcher (default: the listen address).',
  ),
  opt(
    'cluster.heartbeatMs',
    z.number().int().min(100),
    DEFAULT_NODE_HEARTBEAT_MS,
    'Node heartbeat interval in the Redis node registry; a node missing three beats is dead.',
  ),
  opt(
    'cluster.sessionTtlMs',
    z.number().int().min(300),
    DEFAULT_SESSION_TTL_MS,
    "Lifetime of a node's lease in the Redis session registry and presence engine without a renewal (renewed every third, one command per node whatever its number of users); sessions and presence of a crashed node drop out within it.",
  ),
  opt(
    'cluster.drainWindowMs',
    z.number().int().min(0),
    10_000,
    'Draining (SIGTERM with Redis, or POST /api/drain) tells clients to reconnect through the dispatcher spread over this window.',
  ),
  opt(
    'dispatch.strategy',
    z.enum(['hash', 'load']),
    'hash',
    'How `herald dispatch` picks a node: hash = rendezvous hash of the user (stable), load = fewest connections.',
  ),
  opt('dispatch.backups', z.number().int().min(0).max(16), 2, 'Backup node URLs returned after the primary.'),
  opt('workers', z.number().int().min(1).max(256), 1, 'Worker processes serving the one port (`herald serve --workers N`); more than 1 requires redis.url.'),
  opt('web.chat', z.boolean().optional(), undefined, 'Serve the demo web chat at / (default: on in development mode only).'),
  opt('web.admin', z.boolean(), true, 'Serve the admin dashboard at /admin (protected like /api: API key, or loopback when no key is set).'),
  opt('web.root', z.string(), '', 'Directory holding chat/ and admin/ ("" = the web/ folder of this installation).'),
] as const;

type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void ? I : never;
type DeepReadonly<T> = T extends readonly (infer E)[] ? readonly DeepReadonly<E>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;
/** The nested object a dotted option path stands for; an option that may be undefined is an optional key. */
type Nest<P extends string, V> = P extends `${infer Head}.${infer Rest}`
  ? { readonly [K in Head]: Nest<Rest, V> }
  : undefined extends V
    ? { readonly [K in P]?: V }
    : { readonly [K in P]: V };
/** Intersections of nested objects merged into one plain object type (for readable hover types). */
type Merge<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]: Merge<T[K]> } : T;
type OptionTree<O> = UnionToIntersection<O extends OptionSpec<infer P, infer S> ? Nest<P, DeepReadonly<z.output<S>>> : never>;

/**
 * The validated, frozen configuration. Derived from OPTIONS: one option row is one field, typed by
 * its schema's output, so the table and the type cannot drift apart.
 */
export type HeraldConfig = Merge<OptionTree<(typeof OPTIONS)[number]>>;
/** The `tls` section: PEM files served on the listen port ("" = plain HTTP). */
export type TlsConfig = HeraldConfig['tls'];
/** The `nchan` section. */
export type NchanConfig = HeraldConfig['nchan'];
/** The `backend` section. */
export type BackendConfig = HeraldConfig['backend'];
/** Channel policy resolved for one channel (the `channels` defaults, or a namespace's overrides over them). */
export type ChannelPolicy = HeraldConfig['channels'];

/** Partial config as given by a file, env or flags (validated later). */
export type ConfigInput = Record<string, unknown>;

/** Environment variable for an option path: `limits.maxConnections` → `HERALD_LIMITS_MAX_CONNECTIONS`. */
export function envName(path: string): string {
  return (
    'HERALD_' +
    path
      .replace(/\./g, '_')
      .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
      .toUpperCase()
  );
}

/** CLI flag for an option path: `limits.maxConnections` → `--limits.max-connections`. */
export function flagName(path: string): string {
  return '--' + path.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

function buildSchema(): z.ZodType {
  interface Node {
    [k: string]: Node | z.ZodType;
  }
  const root: Node = {};
  for (const o of OPTIONS) {
    const parts = o.path.split('.');
    let node = root;
    for (const p of parts.slice(0, -1)) node = (node[p] ??= {}) as Node;
    node[parts[parts.length - 1]!] = o.schema;
  }
  const toZod = (n: Node): z.ZodType => z.object(Object.fromEntries(Object.entries(n).map(([k, v]) => [k, v instanceof z.ZodType ? v : toZod(v)]))).strict();
  return toZod(root);
}

const CONFIG_SCHEMA = buildSchema();

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep-merge plain objects; arrays and scalars of later layers replace earlier ones. */
export function mergeLayers(...layers: ConfigInput[]): ConfigInput {
  const out: ConfigInput = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue;
      out[k] = isPlainObject(v) && isPlainObject(out[k]) ? mergeLayers(out[k] as ConfigInput, v) : v;
    }
  }
  return out;
}

/** The defaults as a nested config object. */
export function defaultsLayer(): ConfigInput {
  const out: ConfigInput = {};
  for (const o of OPTIONS) if (o.default !== undefined) setPath(out, o.path, o.default);
  return out;
}

/** Set a dotted path in a nested object. */
export function setPath(obj: ConfigInput, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = obj;
  for (const p of parts.slice(0, -1)) {
    if (!isPlainObject(node[p])) node[p] = {};
    node = node[p] as ConfigInput;
  }
  node[parts[parts.length - 1]!] = value;
}

/** Thrown by `resolveConfig` with every problem found. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.problems = problems;
  }
}

/** Whether `host` only listens on the loopback interface. */
export { isLoopbackHost } from './config-security.js';

/**
 * Merge the layers over the defaults, validate, and return a frozen config.
 * Throws ConfigError listing every problem at once.
 */
export function resolveConfig(...layers: ConfigInput[]): HeraldConfig {
  const merged = mergeLayers(defaultsLayer(), ...layers);
  const result = CONFIG_SCHEMA.safeParse(merged);
  const problems: string[] = [];
  if (!result.success) {
    for (const issue of result.error.issues) {
      const where = issue.path.length ? issue.path.join('.') : '(root)';
      problems.push(`${where}: ${issue.message}`);
    }
  }
  const cfg = (result.success ? result.data : merged) as HeraldConfig;
  if (result.success) problems.push(...S.securityProblems(cfg));
  if (result.success && cfg.workers > 1 && !cfg.redis.url) {
    problems.push(`workers: ${cfg.workers} workers share channels and history only through Redis; set redis.url (${envName('redis.url')}) or use 1 worker`);
  }
  if (problems.length) throw new ConfigError(problems);
  const frozen = deepFreeze(cfg);
  RESOLVED.add(frozen);
  return frozen;
}

/** Configs returned by `resolveConfig` (validated, defaults filled in, frozen). */
const RESOLVED = new WeakSet<object>();

/** Whether `value` is a config returned by `resolveConfig` (not merely an object of the same shape). */
export function isResolvedConfig(value: unknown): value is HeraldConfig {
  return typeof value === 'object' && value !== null && RESOLVED.has(value);
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}
