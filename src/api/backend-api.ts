/**
 * Server API additions for backends (docs/api.md, "Backend integration"): IM send as the system,
 * groups and memberships, contact lists, presence queries, disconnecting a user or one session,
 * and token revocation (by `jti`, or every token of a user issued before a time). Kicks and
 * revocations act on every node of the cluster (HeraldCore.control); the answer counts the
 * sessions closed on the node that took the request and the nodes reached.
 */
import { z } from 'zod';
import type { HeraldCore } from '../core/core.js';
import { DEFAULT_REVOCATION_TTL_MS } from '../core/revocation.js';
import type { ImService } from '../core/im/service.js';
import { userIdSchema } from '../core/user-id.js';
import { DisconnectCode } from '../protocol/codes.js';
import { parseBody, parseJson, readBody } from '../transports/http.js';
import type { ServerApi } from './api.js';

const userId = userIdSchema;
const users = z.array(userId).min(1).max(10_000);
const groupId = z.string().min(1).max(160);

const systemBody = z
  .object({
    to: userId.optional(),
    users: users.optional(),
    conversation: groupId.optional(),
    clientId: z.string().min(1).max(100).optional(),
    data: z.unknown(),
  })
  .strict()
  .refine((b) => [b.to, b.users, b.conversation].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of `to`, `users` or `conversation`',
  });
const groupBody = z.object({ owner: userId, title: z.string().max(256).optional(), members: z.array(userId).max(100_000) }).strict();
const membersBody = z
  .object({ add: z.array(userId).max(100_000).optional(), remove: z.array(userId).max(100_000).optional() })
  .strict()
  .refine((b) => (b.add?.length ?? 0) + (b.remove?.length ?? 0) > 0, { message: 'give `add` and/or `remove`' });
const roleBody = z.object({ user: userId, role: z.enum(['owner', 'admin', 'member']) }).strict();
const contactsBody = z.object({ contacts: z.array(userId).max(10_000) }).strict();
const presenceBody = z.object({ users: z.array(userId).min(1).max(1000) }).strict();
const disconnectBody = z
  .object({
    user: userId.optional(),
    client: z.string().min(1).max(128).optional(),
    code: z.number().int().min(3000).max(4999).optional(),
    reason: z.string().max(120).optional(),
  })
  .strict()
  .refine((b) => (b.user === undefined) !== (b.client === undefined), { message: 'give exactly one of `user` or `client`' });
const revokeBody = z
  .object({
    jti: z.string().min(1).max(256).optional(),
    expiresAt: z.number().int().min(0).optional(),
    user: userId.optional(),
    issuedBefore: z.number().int().min(0).optional(),
  })
  .strict()
  .refine((b) => (b.jti === undefined) !== (b.user === undefined), { message: 'give exactly one of `jti` or `user`' })
  .refine((b) => b.jti !== undefined || b.expiresAt === undefined, { message: '`expiresAt` goes with `jti`' })
  .refine((b) => b.user !== undefined || b.issuedBefore === undefined, { message: '`issuedBefore` goes with `user`' });

/** Add the backend-integration routes to the server API. */
export function registerBackendApi(api: ServerApi, core: HeraldCore, im: ImService): void {
  const maxBody = core.config.limits.maxMessageBytes + 4096;
  const body = async <T>(req: import('node:http').IncomingMessage, schema: z.ZodType<T>): Promise<T> =>
    parseBody(schema, parseJson(await readBody(req, maxBody)));
  const admin = im.admin;

  api.route('POST', /^im\/system$/, async (req) => admin.sendAsSystem(await body(req, systemBody)));
  api.route('POST', /^im\/groups$/, async (req) => {
    const b = await body(req, groupBody);
    return admin.createGroup(b.owner, b.title, b.members);
  });
  api.route('POST', /^im\/groups\/([^/]+)\/members$/, async (req, _url, [group]) => {
    const b = await body(req, membersBody);
    return admin.changeMembers(group!, b.add ?? [], b.remove ?? []);
  });
  api.route('GET', /^im\/groups\/([^/]+)\/members$/, async (_req, _url, [group]) => ({ members: await admin.members(group!) }));
  api.route('POST', /^im\/groups\/([^/]+)\/roles$/, async (req, _url, [group]) => {
    const b = await body(req, roleBody);
    await admin.setRole(group!, b.user, b.role);
    return {};
  });

  api.route('PUT', /^im\/contacts\/([^/]+)$/, async (req, _url, [user]) => {
    parseBody(userId, user);
    const b = await body(req, contactsBody);
    return admin.setContacts(user!, b.contacts);
  });
  api.route('GET', /^im\/contacts\/([^/]+)$/, async (_req, _url, [user]) => {
    parseBody(userId, user);
    await im.ready();
    return { contacts: await im.contacts(user!, true) };
  });

  // The backend is trusted with everyone's presence: unmasked (no viewer).
  api.route('POST', /^presence$/, async (req) => ({ presence: await im.getPresence(undefined, (await body(req, presenceBody)).users) }));
  api.route('GET', /^presence$/, async (_req, url) => {
    const list = (url.searchParams.get('users') ?? '').split(',').filter(Boolean);
    return { presence: await im.getPresence(undefined, parseBody(presenceBody, { users: list }).users) };
  });

  api.route('GET', /^users\/([^/]+)\/sessions$/, async (_req, _url, [user]) => {
    parseBody(userId, user);
    return { user, sessions: await core.sessions.list(user!) };
  });

  api.route('POST', /^disconnect$/, async (req) => {
    const b = await body(req, disconnectBody);
    return core.control({
      type: 'disconnect',
      user: b.user,
      client: b.client,
      code: b.code ?? DisconnectCode.FORBIDDEN,
      reason: b.reason ?? 'disconnected by the server',
    });
  });

  api.route('POST', /^revoke$/, async (req) => {
    const b = await body(req, revokeBody);
    const now = Date.now();
    return core.control(
      b.jti !== undefined
        ? { type: 'revoke-jti', jti: b.jti, expiresAt: b.expiresAt ?? now + DEFAULT_REVOCATION_TTL_MS }
        : { type: 'revoke-user', user: b.user!, issuedBefore: b.issuedBefore ?? now },
    );
  });
}
