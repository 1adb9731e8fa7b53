/**
 * Client → backend commands of the native protocol: `rpc` (method + data, the backend's answer
 * goes back to this client) and `send` (fire-and-forget message, delivered to the backend as a
 * `client.message` webhook event: batched, retried, at-least-once). See docs/backend.md.
 */
import { z } from 'zod';
import type { Backend } from '../../core/backend.js';
import { HeraldError } from '../../core/errors.js';
import type { CommandRegistry } from './im-commands.js';

const method = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:/-]+$/, 'method names use A-Z a-z 0-9 _ . : / -');

/** Register `rpc` (when the RPC hook is configured) and `send` (when webhooks are). */
export function registerBackendCommands(front: CommandRegistry, backend: Backend): void {
  if (backend.has('rpc')) {
    front.registerCommand<{ method: string; data?: unknown }>('rpc', {
      schema: z.object({ method, data: z.unknown().optional() }).strict(),
      handler: async (ctx, p) => ({ data: await backend.rpc(ctx.identity, ctx.client, p.method, p.data ?? null) }),
    });
  }
  if (backend.wants('client.message')) {
    front.registerCommand<{ data?: unknown }>('send', {
      schema: z.object({ data: z.unknown().optional() }).strict(),
      handler: async (ctx, p) => {
        if (p.data === undefined) throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'send needs `data`');
        if (!backend.emit('client.message', { client: ctx.client, user: ctx.identity?.user, data: p.data })) {
          throw new HeraldError('HERALD_ERR_TOO_MANY_REQUESTS', 'The backend queue is full; retry later');
        }
        return {};
      },
    });
  }
}
