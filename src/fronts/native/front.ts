/**
 * The native protocol front: `/connection/websocket` (WebSocket), `/connection/sse`
 * (EventSource), `/connection/poll` (long-poll), `/connection/stream` (chunked NDJSON) and
 * `/connection/command` (HTTP POST of one command, for clients without WebSocket).
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Identity } from '../../core/auth.js';
import type { HeraldCore } from '../../core/core.js';
import { HeraldError, logFailure, toHeraldError } from '../../core/errors.js';
import { type CommandErrorEvent, commandErrorEvents } from '../../core/events.js';
import { OnDemandInterval } from '../../core/on-demand-interval.js';
import { TimerWheel } from '../../core/timer-wheel.js';
import { DisconnectCode } from '../../protocol/codes.js';
import { decodeCommand, validateParams } from '../../protocol/frames.js';
import { answerPreflight, applyCors, clientCors } from '../../transports/cors.js';
import { admissionRequest, readBody, sendError, sendJson } from '../../transports/http.js';
import { admitSocket, refuseUpgrade, WebSocketTransport } from '../../transports/websocket.js';
import { builtinCommands, type CommandContext, type CommandSpec, resultJson } from './commands.js';
import { HttpSubscriber, type HttpMode, parseSubscribeRequest } from './http-subscriber.js';
import type { WebSocket } from 'ws';
import { type SessionEnv, WsSession } from './ws-session.js';

/** URL prefix of the native endpoints. */
export const NATIVE_PREFIX = '/connection/';

const HTTP_MODES: Record<string, HttpMode> = { sse: 'sse', poll: 'long-poll', stream: 'http-stream' };

/** The native protocol on every transport. */
export class NativeFront {
  readonly core: HeraldCore;
  readonly commands: Map<string, CommandSpec<never>>;
  readonly #ws: WebSocketTransport;
  readonly #keepAlive: TimerWheel<HttpSubscriber>;
  readonly #awaitingConnect = new Set<WsSession>();
  readonly #sessions = new Set<WsSession>();
  /** Runs while sessions await their connect command; a node whose sessions are all connected never wakes for it. */
  readonly #connectSweeper: OnDemandInterval;
  /** Shared by every session (one object, not closures per connection). */
  readonly #sessionEnv: SessionEnv;
  #nextId = 0;

  constructor(core: HeraldCore) {
    this.core = core;
    this.commands = builtinCommands();
    const { limits, timing } = core.config;
    this.#ws = new WebSocketTransport({ maxPayload: limits.maxMessageBytes, pingIntervalMs: timing.pingIntervalMs });
    this.#keepAlive = new TimerWheel<HttpSubscriber>(timing.streamKeepAliveMs, (s) => s.keepAlive());
    this.#connectSweeper = new OnDemandInterval(Math.min(1000, timing.connectTimeoutMs), () => this.#sweepConnect());
    this.#sessionEnv = {
      core,
      commands: this.commands,
      onConnect: (s) => this.#awaitingConnect.delete(s),
      onClose: (s) => {
        this.#awaitingConnect.delete(s);
        this.#sessions.delete(s);
      },
    };
  }

  /** A short id, unique on this node. */
  #newId(): string {
    return `${this.core.nodeId.slice(0, 8)}-${(++this.#nextId).toString(36)}`;
  }

  /** Register a command (e.g. by the IM service). Throws if the name is taken. */
  registerCommand<P>(name: string, spec: CommandSpec<P>): void {
    if (this.commands.has(name) || ['connect', 'subscribe', 'unsubscribe'].includes(name)) throw new Error(`command ${name} already registered`);
    this.commands.set(name, spec as unknown as CommandSpec<never>);
  }

  /** Live WebSocket sessions. */
  sessions(): IterableIterator<WsSession> {
    return this.#sessions.values();
  }

  /** Handle `/connection/websocket` upgrades; returns false for other paths. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean {
    if (url.pathname !== `${NATIVE_PREFIX}websocket`) return false;
    // A browser sends its cookies with every upgrade and no CORS guards the answer: only allowed origins.
    if (!this.core.net.originAllowed(req.headers.origin, req.headers.host)) {
      refuseUpgrade(socket, 403, 'Forbidden');
      return true;
    }
    this.#ws.upgrade(req, socket, head, this.#open);
    return true;
  }

  /** Start a session on an upgraded socket (a method, so it captures no request scope). */
  readonly #open = (ws: WebSocket, req: IncomingMessage): void => {
    const ticket = admitSocket(this.core.clients, this.core.net, ws, req, 'native', 'websocket');
    if (!ticket) return;
    const session = new WsSession(this.#newId(), ws, this.#sessionEnv, ticket);
    this.#sessions.add(session);
    this.#awaitingConnect.add(session);
    this.#connectSweeper.wake();
  };

  /** Handle native HTTP requests; returns false for other paths. */
  handleHttp(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    if (!url.pathname.startsWith(NATIVE_PREFIX)) return false;
    const name = url.pathname.slice(NATIVE_PREFIX.length);
    const mode = HTTP_MODES[name];
    if (mode || name === 'command') {
      // CORS for pages on allowed origins; a foreign origin is refused before anything runs.
      const cors = clientCors(req, this.core.net);
      applyCors(res, cors);
      if (!cors.allowed) {
        sendError(res, new HeraldError('HERALD_ERR_FORBIDDEN', 'Origin not allowed (see allowedOrigins)'));
        return true;
      }
      if (req.method === 'OPTIONS') {
        answerPreflight(res, cors, mode ? 'GET' : 'POST');
        return true;
      }
    }
    if (mode) {
      if (req.method !== 'GET') sendError(res, new HeraldError('HERALD_ERR_METHOD_NOT_ALLOWED', 'Use GET'));
      else this.#subscribeHttp(req, res, url, mode).catch((err) => sendError(res, err, this.core.logger));
      return true;
    }
    if (name === 'command') {
      if (req.method !== 'POST') sendError(res, new HeraldError('HERALD_ERR_METHOD_NOT_ALLOWED', 'Use POST'));
      else this.#command(req, res, url).catch((err) => sendError(res, err, this.core.logger));
      return true;
    }
    if (name === 'websocket') {
      sendError(res, new HeraldError('HERALD_ERR_BAD_REQUEST', 'WebSocket upgrade expected'));
      return true;
    }
    return false;
  }

  /** Tell every native client to reconnect and stop timers. */
  close(code: number = DisconnectCode.SHUTDOWN, reason = 'server shutting down'): void {
    this.#connectSweeper.stop();
    this.#ws.stop();
    this.#keepAlive.stop();
    for (const s of [...this.#sessions]) s.disconnect(code, reason);
  }

  /** Identity from `?token=` or `Authorization: Bearer`, or `?user=` in development mode. */
  async #identify(req: IncomingMessage, url: URL): Promise<Identity | undefined> {
    const auth = req.headers.authorization;
    const token = url.searchParams.get('token') ?? (auth?.startsWith('Bearer ') ? auth.slice(7) : undefined);
    const user = url.searchParams.get('user') || undefined;
    return this.core.clients.login({ token: token || undefined, user, transport: 'http' });
  }

  async #subscribeHttp(req: IncomingMessage, res: ServerResponse, url: URL, mode: HttpMode): Promise<void> {
    const clients = this.core.clients;
    const ticket = clients.admit(admissionRequest(req, this.core.net, 'native', mode, mode === 'long-poll'));
    let sub: HttpSubscriber | undefined;
    try {
      const request = parseSubscribeRequest(req, url, this.core.config.limits.maxChannelsPerConnection);
      const identity = await this.#identify(req, url);
      sub = new HttpSubscriber(this.#newId(), mode, this.core, res, identity, ticket, (s) => this.#keepAlive.remove(s));
      if (mode !== 'long-poll') this.#keepAlive.add(sub);
      await sub.start(request);
    } catch (err) {
      // Before the response started the error gets its own status; after, the stream is cut.
      if (!sub) clients.release(ticket);
      else if (res.headersSent) sub.disconnect(DisconnectCode.BAD_REQUEST, 'subscribe failed');
      else sub.abort();
      throw err;
    }
  }

  async #command(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const body = await readBody(req, this.core.config.limits.maxMessageBytes);
    const decoded = decodeCommand(body.toString('utf8'));
    if ('kind' in decoded) {
      if (decoded.kind === 'json') throw new HeraldError('HERALD_ERR_MALFORMED_JSON', 'Request body is not valid JSON');
      if (decoded.kind === 'depth') throw new HeraldError('HERALD_ERR_JSON_TOO_DEEP', decoded.message);
      throw new HeraldError('HERALD_ERR_BAD_REQUEST', decoded.message);
    }
    const spec = this.commands.get(decoded.cmd);
    try {
      const identity = await this.#identify(req, url);
      if (!spec) throw new HeraldError('HERALD_ERR_UNKNOWN_COMMAND', `Unknown command over HTTP: ${decoded.cmd.slice(0, 64)}`);
      const params = validateParams(spec.schema, decoded.params);
      if (!params.ok) throw new HeraldError('HERALD_ERR_BAD_REQUEST', params.message);
      const ctx: CommandContext = { core: this.core, client: `http-${randomUUID()}`, identity, transport: 'http' };
      const result = await spec.handler(ctx, params.value as never);
      const text = resultJson(decoded.id, result);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    } catch (err) {
      // Logged and counted as on the WebSocket path.
      const e = toHeraldError(err);
      const command = spec ? decoded.cmd : 'other';
      logFailure(this.core.logger, e, { command, transport: 'http' });
      if (commandErrorEvents.hasSubscribers)
        commandErrorEvents.publish({
          node: this.core.nodeId,
          command,
          code: e.code,
          transport: 'http',
        } satisfies CommandErrorEvent);
      sendJson(res, e.status, {
        id: decoded.id,
        code: e.code,
        message: e.message,
        error: { code: e.wire, name: e.code, message: e.message, temporary: e.temporary },
      });
    }
  }

  /** Disconnect the sessions past their connect deadline; returns whether any still await connect. */
  #sweepConnect(): boolean {
    const deadline = Date.now() - this.core.config.timing.connectTimeoutMs;
    for (const s of this.#awaitingConnect) {
      if (s.openedAt < deadline) {
        this.#awaitingConnect.delete(s);
        s.disconnect(DisconnectCode.CONNECT_TIMEOUT, 'connect timeout');
      }
    }
    return this.#awaitingConnect.size > 0;
  }
}
