/**
 * Server API additions for backends (docs/api.md, "Backend integration"): IM send as the system,
 * groups and memberships, contact lists, presence queries, disconnecting a user or one session,
 * and token revocation (by `jti`, or every token of a user issued before a time). Kicks and
 * revocations act on every node of the cluster (HeraldCore.control); the answer counts the
 * sessions closed on the node that took the request and the nodes reached.
 */
import { z } from 'zod';
import type { HeraldCore } from '../core/core.js';
import { HeraldError } from '../core/errors.js';
import { DEFAULT_REVOCATION_TTL_MS } from '../core/revocation.js';
import type { ImService } from '../core/im/service.js';
import { DisconnectCode } from '../protocol/codes.js';
import { parseJson, readBody } from '../transports/http.js';
import type { ServerApi } from './api.js';

const userId = z.string().regex(/^[A-Za-z0-9_.@-]{1,128}$/, 'user ids use A-Z a-z 0-9 _ . @ - (1-128 chars)');
const users = z.array(userId).min(1).max(10_000);
const groupId = z.string().min(1).max(160);

const systemBody = z
  .object({ to: userId.optional(), users: users.optional(), conversation: groupId.optional(), clientId: z.string().min(1).max(100).optional(), data: z.unknown() })
  .strict()
  .refine((b) => [b.to, b.users, b.conversation].filter((x) => x !== undefined).length === 1, { message: 'give exactly one of `to`, `users` or `conversation`' });
const groupBody = z.object({ owner: userId, title: z.string().max(256).optional(), members: z.array(userId).max(100_000) }).strict();
const membersBody = z
  .object({ add: z.array(userId).max(100_000).optional(), remove: z.array(userId).max(100_000).optional() })
  .strict()
  .refine((b) => (b.add?.length ?? 0) + (b.remove?.length ?? 0) > 0, { message: 'give `add` and/or `remove`' });
const roleBody = z.object({ user: userId, role: z.enum(['owner', 'admin', 'member']) }).strict();
const contactsBody = z.object({ contacts: z.array(userId).max(10_000) }).strict();
const presenceBody = z.object({ users: z.array(userId).min(1).max(1000) }).strict();
const disconnectBody = z
  .object({ user: userId.optional(), client: z.string().min(1).max(128).optional(), code: z.number().int().min(3000).max(4999).optional(), reason: z.string().max(120).optional() })
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

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success) throw new HeraldError('HERALD_ERR_BAD_REQUEST', r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
  return r.data;
}

/** Replace a user's contact list (contacts become known users). */
export async function setContacts(im: ImService, user: string, contacts: readonly string[]): Promise<{ added: number; removed: number }> {
  await im.registerUser(user);
  const want = new Set(contacts.filter((c) => c !== user));
  for (const c of want) await im.registerUser(c);
  const have = new Set(await im.store.contacts(user));
  let added = 0;
  let removed = 0;
  for (const c of want) if (!have.has(c) && ++added) await im.store.addContact(user, c);
  for (const c of have) if (!want.has(c) && ++removed) await im.store.removeContact(user, c);
  return { added, removed };
}

/** Add the backend-integration routes to the server API. */
export function registerBackendApi(api: ServerApi, core: HeraldCore, im: ImService): void {
  const maxBody = core.config.limits.maxMessageBytes + 4096;
  const body = async <T>(req: import('node:http').IncomingMessage, schema: z.ZodType<T>): Promise<T> => parse(schema, parseJson(await readBody(req, maxBody)));
  const system = core.config.backend.systemUser;

  // The group's owner acts for the backend (the API is trusted with every group).
  const ownerOf = async (group: string): Promise<string> => {
    await im.ready();
    const conv = await im.store.conversation(group);
    if (!conv || conv.kind !== 'group') throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION', 'Unknown group');
    const owner = (await im.store.members(group)).find((m) => m.role === 'owner');
    if (!owner) throw new HeraldError('HERALD_ERR_IM_UNKNOWN_CONVERSATION', 'Group has no owner');
    return owner.user;
  };

  api.route('POST', /^im\/system$/, async (req) => {
    const b = await body(req, systemBody);
    await im.registerUser(system);
    const clientId = b.clientId;
    if (b.users) {
      const acks = [];
      for (const u of new Set(b.users)) {
        await im.registerUser(u);
        acks.push({ user: u, ...(await im.send(system, { to: u, clientId: clientId && `${clientId}:${u}`, data: b.data }, { system: true })) });
      }
      return { results: acks };
    }
    if (b.to) await im.registerUser(b.to);
    if (b.conversation) {
      // The system speaks in a group without being a member: it joins as admin once.
      await ownerOf(b.conversation);
      if (!(await im.store.member(b.conversation, system))) await im.store.addMembers(b.conversation, [{ user: system, role: 'admin' }]);
    }
    return im.send(system, { to: b.to, conversation: b.conversation, clientId, data: b.data }, { system: true });
  });

  api.route('POST', /^im\/groups$/, async (req) => {
    const b = await body(req, groupBody);
    for (const u of [b.owner, ...b.members]) await im.registerUser(u);
    const g = await im.createGroup(b.owner, { title: b.title, members: b.members });
    return { group: g.id, title: g.title, memberCount: g.memberCount };
  });
  api.route('POST', /^im\/groups\/([^/]+)\/members$/, async (req, _url, [group]) => {
    const b = await body(req, membersBody);
    const owner = await ownerOf(group!);
    for (const u of b.add ?? []) await im.registerUser(u);
    const added = b.add?.length ? await im.addMembers(owner, group!, b.add) : [];
    const removed: string[] = [];
    for (const u of b.remove ?? []) {
      if (await im.store.member(group!, u)) {
        await im.removeMember(u === owner ? u : owner, group!, u);
        removed.push(u);
      }
    }
    return { added, removed };
  });
  api.route('GET', /^im\/groups\/([^/]+)\/members$/, async (_req, _url, [group]) => {
    await ownerOf(group!);
    return { members: await im.store.members(group!) };
  });
  api.route('POST', /^im\/groups\/([^/]+)\/roles$/, async (req, _url, [group]) => {
    const b = await body(req, roleBody);
    const owner = await ownerOf(group!);
    if (b.user === owner) {
      if (b.role !== 'owner') throw new HeraldError('HERALD_ERR_IM_NOT_ALLOWED', 'Transfer ownership by giving another member the owner role');
      return {};
    }
    await im.setRole(owner, group!, b.user, b.role);
    return {};
  });

  api.route('PUT', /^im\/contacts\/([^/]+)$/, async (req, _url, [user]) => {
    parse(userId, user);
    const b = await body(req, contactsBody);
    return setContacts(im, user!, b.contacts);
  });
  api.route('GET', /^im\/contacts\/([^/]+)$/, async (_req, _url, [user]) => {
    parse(userId, user);
    await im.ready();
    return { contacts: await im.contacts(user!) };
  });

  api.route('POST', /^presence$/, async (req) => ({ presence: await im.getPresence((await body(req, presenceBody)).users) }));
  api.route('GET', /^presence$/, async (_req, url) => {
    const list = (url.searchParams.get('users') ?? '').split(',').filter(Boolean);
    return { presence: await im.getPresence(parse(presenceBody, { users: list }).users) };
  });

  api.route('GET', /^users\/([^/]+)\/sessions$/, async (_req, _url, [user]) => {
    parse(userId, user);
    return { user, sessions: await core.sessions.list(user!) };
  });

  api.route('POST', /^disconnect$/, async (req) => {
    const b = await body(req, disconnectBody);
    return core.control({ type: 'disconnect', user: b.user, client: b.client, code: b.code ?? DisconnectCode.FORBIDDEN, reason: b.reason ?? 'disconnected by the server' });
  });

  api.route('POST', /^revoke$/, async (req) => {
    const b = await body(req, revokeBody);
    const now = Date.now();
    return core.control(
      b.jti !== undefined ? { type: 'revoke-jti', jti: b.jti, expiresAt: b.expiresAt ?? now + DEFAULT_REVOCATION_TTL_MS } : { type: 'revoke-user', user: b.user!, issuedBefore: b.issuedBefore ?? now },
    );
  });
}
