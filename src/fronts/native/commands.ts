/**
 * The command registry of the native protocol and the built-in stateless commands (publish,
 * history, ping). Commands are shared by every transport: WebSocket frames and HTTP POST.
 * Other services (the IM) register their commands here.
 */
import type { z } from 'zod';
import type { Identity } from '../../core/auth.js';
import type { HeraldCore } from '../../core/core.js';
import { HeraldError } from '../../core/errors.js';
import { jsonInput } from '../../core/publication.js';
import { COMMAND_SCHEMAS } from '../../protocol/frames.js';
import { parsePosition, type StreamPosition } from '../../protocol/position.js';
import { pubFrame } from './encode.js';

/** What a command handler knows about its caller. */
export interface CommandContext {
  readonly core: HeraldCore;
  /** Client (session) id. */
  readonly client: string;
  /** Authenticated identity, if the client connected with one. */
  readonly identity: Identity | undefined;
  /** Transport label. */
  readonly transport: string;
  /** Push a frame to this client, when the transport can (WebSocket); undefined over HTTP POST. */
  readonly push?: (frame: string) => void;
}

/**
 * A registered command. `result` is either a JSON-serialisable value or a `RawJson` (a
 * pre-encoded JSON string, for results that embed publication frames).
 */
export interface CommandSpec<P = unknown> {
  readonly schema: z.ZodType<P>;
  readonly handler: (ctx: CommandContext, params: P) => Promise<unknown>;
}

/** A result that is already JSON text. */
export class RawJson {
  constructor(readonly json: string) {}
}

/** Serialise a command result (RawJson passes through). */
export function resultJson(id: number | undefined, result: unknown): string {
  const body = result instanceof RawJson ? result.json : JSON.stringify(result ?? {});
  return id === undefined ? `{"result":${body}}` : `{"id":${id},"result":${body}}`;
}

/** Parse an optional position parameter; 400 HERALD_ERR_INVALID_POSITION when malformed. */
export function positionParam(text: string | undefined): StreamPosition | undefined {
  if (text === undefined || text === '') return undefined;
  const p = parsePosition(text);
  if (!p) throw new HeraldError('HERALD_ERR_INVALID_POSITION', 'Invalid position: expected "<epoch>:<offset>"');
  return p;
}

/** Built-in commands that need no per-connection state. */
export function builtinCommands(): Map<string, CommandSpec<never>> {
  const m = new Map<string, CommandSpec<never>>();
  const add = <P>(name: string, spec: CommandSpec<P>): void => void m.set(name, spec as unknown as CommandSpec<never>);

  add('publish', {
    schema: COMMAND_SCHEMAS.publish,
    handler: async (ctx, p) => {
      ctx.core.clients.assertCanRead(ctx.identity, p.channel);
      if (!ctx.core.policy(p.channel).allowPublish) throw new HeraldError('HERALD_ERR_FORBIDDEN', 'Clients may not publish to this channel');
      if (p.data === undefined) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'publish needs `data`');
      const data = await ctx.core.backend.proxyPublish(ctx.identity, ctx.client, p.channel, p.data);
      const pub = await ctx.core.publish(p.channel, jsonInput(data, { info: { user: ctx.identity?.user, client: ctx.client } }), 'client');
      return { channel: pub.channel, epoch: pub.epoch, offset: pub.offset };
    },
  });

  add('history', {
    schema: COMMAND_SCHEMAS.history,
    handler: async (ctx, p) => {
      ctx.core.clients.assertCanRead(ctx.identity, p.channel);
      const since = positionParam(p.since);
      const res = await ctx.core.history(p.channel, { since, limit: p.limit, reverse: p.reverse });
      const { frames, more } = framesWithin(res.publications.map(pubFrame), ctx.core.config.limits.maxOutboundBytes);
      return new RawJson(
        `{"channel":${JSON.stringify(p.channel)},"epoch":"${res.position.epoch}","offset":${res.position.offset},"publications":[${frames.join(',')}]` +
          `${more ? ',"more":true' : ''}}`,
      );
    },
  });

  add('ping', { schema: COMMAND_SCHEMAS.ping, handler: async () => ({}) });
  return m;
}

/**
 * The leading `frames` whose bytes (with a separator each) stay within `maxBytes`, the first one
 * always, and whether any were left out. One history answer stays within
 * `limits.maxOutboundBytes`, as a long-poll answer does: a reader is not cut as a slow consumer
 * for the size of its own answer, and a request that never reads holds no more than that.
 */
function framesWithin(frames: string[], maxBytes: number): { frames: string[]; more: boolean } {
  let bytes = 0;
  for (let i = 0; i < frames.length; i++) {
    bytes += Buffer.byteLength(frames[i]!) + 1;
    if (i > 0 && bytes > maxBytes) return { frames: frames.slice(0, i), more: true };
  }
  return { frames, more: false };
}
