/**
 * Native protocol v1 frames (JSON). Client commands carry a numeric `id` echoed in the reply and
 * a `cmd` name; the server replies `{"id","result"}` or `{"id","error"}` and pushes frames with
 * a `type`. See docs/protocol.md.
 */
import { z } from 'zod';
import { MAX_JSON_DEPTH, jsonDepthExceeds } from './json.js';

const position = z.string().max(128);
const channel = z.string().max(1024);

/** Schemas of the built-in commands, by `cmd`. Unknown keys are rejected. */
export const COMMAND_SCHEMAS = {
  connect: z.object({ token: z.string().max(8192).optional(), user: z.string().max(128).optional(), version: z.number().int().optional() }).strict(),
  subscribe: z.object({ channel, since: position.optional(), last: z.number().int().min(0).max(1_000_000).optional() }).strict(),
  unsubscribe: z.object({ channel }).strict(),
  publish: z.object({ channel, data: z.unknown() }).strict(),
  history: z
    .object({ channel, since: position.optional(), limit: z.number().int().min(0).max(1_000_000).optional(), reverse: z.boolean().optional() })
    .strict(),
  ping: z.object({}).strict(),
  refresh: z.object({ token: z.string().min(1).max(8192) }).strict(),
} as const;

/** Names of the built-in commands. */
export type CommandName = keyof typeof COMMAND_SCHEMAS;

/** A decoded command: `cmd`, the optional correlation `id` and its validated params. */
export interface Command {
  readonly id?: number;
  readonly cmd: string;
  readonly params: Record<string, unknown>;
}

/**
 * Why a frame could not be decoded: not JSON, not a command envelope, or nested deeper than
 * `MAX_JSON_DEPTH` (then `id` is known, so the command can be answered with an error).
 */
export type DecodeFailure = { readonly kind: 'json' | 'shape' | 'depth'; readonly id?: number; readonly message: string };

/**
 * Parse one frame into a command envelope. `id` (optional non-negative integer) and `cmd`
 * (string) are checked here; params are validated by the command's schema.
 */
export function decodeCommand(text: string): Command | DecodeFailure {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'json', message: 'Malformed JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { kind: 'shape', message: 'A command is a JSON object' };
  const { id, cmd, ...params } = value as Record<string, unknown>;
  const okId = id === undefined || (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0);
  if (!okId) return { kind: 'shape', message: '`id` must be a non-negative integer' };
  if (typeof cmd !== 'string' || cmd.length === 0 || cmd.length > 64)
    return { kind: 'shape', id: id as number | undefined, message: '`cmd` must be a command name' };
  if (jsonDepthExceeds(text)) return { kind: 'depth', id: id as number | undefined, message: `JSON nests deeper than ${MAX_JSON_DEPTH} levels` };
  return { id: id as number | undefined, cmd, params };
}

/** Validate params against a schema; returns the parsed value or an error message listing every problem. */
export function validateParams<T>(schema: z.ZodType<T>, params: unknown): { ok: true; value: T } | { ok: false; message: string } {
  const r = schema.safeParse(params);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, message: r.error.issues.map((i) => `${i.path.join('.') || 'params'}: ${i.message}`).join('; ') };
}

/** Wire form of an error. */
export interface WireError {
  readonly code: number;
  readonly name: string;
  readonly message: string;
  readonly temporary: boolean;
}

/** Encode an error reply frame. */
export function encodeError(id: number | undefined, error: WireError): string {
  return JSON.stringify({ id, error });
}

/** Encode a push frame of the given type. */
export function encodePush(type: string, body: Record<string, unknown>): string {
  return JSON.stringify({ type, ...body });
}
