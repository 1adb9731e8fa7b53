/**
 * The IM commands of the native protocol (`im.*`), registered on the native front so they work
 * over WebSocket frames and `POST /connection/command` alike. Every command needs an
 * authenticated identity; the sender of everything is that identity (no parameter names a
 * sender, and unknown parameters are rejected). See docs/im.md.
 */
import { z } from 'zod';
import { formatPosition } from '../../protocol/position.js';
import type { ImService } from '../../core/im/service.js';
import { messageEventJson, messageJson } from '../../core/im/wire.js';
import type { CommandContext, CommandSpec } from './commands.js';
import { RawJson } from './commands.js';

const user = z.string().min(1).max(128);
const conversation = z.string().min(1).max(160);
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const clientId = z.string().min(1).max(128);
const limit = z.number().int().min(1).max(10_000).optional();
const role = z.enum(['owner', 'admin', 'member']);

/** Something commands can be registered on (the native front). */
export interface CommandRegistry {
  registerCommand<P>(name: string, spec: CommandSpec<P>): void;
}

/** Register every `im.*` command on `front`. */
export function registerImCommands(front: CommandRegistry, im: ImService): void {
  const add = <S extends z.ZodType>(name: string, schema: S, run: (u: string, p: z.infer<S>, ctx: CommandContext) => Promise<unknown>): void => {
    front.registerCommand<z.infer<S>>(name, {
      schema: schema as unknown as z.ZodType<z.infer<S>>,
      handler: async (ctx, p) => run(await im.authorize(ctx.identity), p, ctx),
    });
  };

  add('im.send', z.object({ to: user.optional(), conversation: conversation.optional(), clientId, data: z.unknown() }).strict(), async (u, p, ctx) =>
    im.send(u, { ...p, data: await ctx.core.backend.proxyImSend(u, ctx.client, p, p.data) }),
  );

  add('im.sync', z.object({ after: seq.optional(), limit }).strict(), async (u, p) => {
    const r = await im.sync(u, p.after, p.limit);
    const messages = r.entries.map((e) => messageEventJson(e.message, e.seq)).join(',');
    return new RawJson(
      `{"messages":[${messages}],"head":${r.head},"acked":${r.acked},"more":${r.more},` +
        `"position":"${formatPosition(r.position)}","groups":${JSON.stringify(r.groups)}}`,
    );
  });

  add('im.ack', z.object({ seq, conversation: conversation.optional() }).strict(), async (u, p) =>
    p.conversation === undefined ? { acked: await im.ack(u, p.seq) } : { conversation: p.conversation, acked: await im.ackGroup(u, p.conversation, p.seq) },
  );

  add('im.history', z.object({ conversation, before: seq.optional(), after: seq.optional(), limit }).strict(), async (u, p) => {
    const list = await im.history(u, p.conversation, p);
    return new RawJson(`{"conversation":${JSON.stringify(p.conversation)},"messages":[${list.map(messageJson).join(',')}]}`);
  });

  add('im.conversations', z.object({ limit }).strict(), async (u, p) => {
    const list = await im.conversations(u, p.limit);
    const items = list.map((c) => {
      const { last, ...rest } = c;
      const head = JSON.stringify(rest);
      return last ? `${head.slice(0, -1)},"last":${messageJson(last)}}` : head;
    });
    return new RawJson(`{"conversations":[${items.join(',')}]}`);
  });

  add('im.read', z.object({ conversation, seq }).strict(), async (u, p) => ({
    conversation: p.conversation,
    readSeq: await im.read(u, p.conversation, p.seq),
  }));
  add('im.typing', z.object({ conversation }).strict(), async (u, p) => {
    await im.typing(u, p.conversation);
    return {};
  });
  add('im.recall', z.object({ message: z.string().min(1).max(64), clientId: clientId.optional() }).strict(), (u, p) => im.recall(u, p.message, p.clientId));
  add('im.edit', z.object({ message: z.string().min(1).max(64), data: z.unknown(), clientId: clientId.optional() }).strict(), (u, p) =>
    im.edit(u, p.message, p.data, p.clientId),
  );

  add('im.group.create', z.object({ title: z.string().max(256).optional(), members: z.array(user).max(100_000) }).strict(), async (u, p) => {
    const { conv: g, invited } = await im.createGroup(u, p);
    return { group: g.id, title: g.title, memberCount: g.memberCount, invited };
  });
  add('im.group.add', z.object({ group: conversation, members: z.array(user).min(1).max(100_000) }).strict(), async (u, p) =>
    im.addMembers(u, p.group, p.members),
  );
  add('im.group.accept', z.object({ group: conversation }).strict(), async (u, p) => {
    const g = await im.groups.accept(u, p.group);
    return { group: g.id, title: g.title, memberCount: g.memberCount };
  });
  add('im.group.decline', z.object({ group: conversation }).strict(), async (u, p) => {
    await im.groups.decline(u, p.group);
    return {};
  });
  add('im.group.invites', z.object({}).strict(), async (u) => ({ invites: await im.groups.invites(u) }));
  add('im.group.remove', z.object({ group: conversation, user }).strict(), async (u, p) => {
    await im.removeMember(u, p.group, p.user);
    return {};
  });
  add('im.group.leave', z.object({ group: conversation }).strict(), async (u, p) => {
    await im.removeMember(u, p.group, u);
    return {};
  });
  add('im.group.role', z.object({ group: conversation, user, role }).strict(), async (u, p) => {
    await im.setRole(u, p.group, p.user, p.role);
    return {};
  });
  add('im.group.members', z.object({ group: conversation }).strict(), async (u, p) => ({ members: await im.members(u, p.group) }));

  add('im.presence.set', z.object({ state: z.enum(['online', 'away', 'busy']), status: z.string().max(256).optional() }).strict(), async (u, p) =>
    im.setPresence(u, p.state, p.status),
  );
  add('im.presence.get', z.object({ users: z.array(user).min(1).max(1000) }).strict(), async (u, p) => ({ presence: await im.getPresence(u, p.users) }));

  add('im.contacts.add', z.object({ user }).strict(), async (u, p) => {
    await im.addContact(u, p.user);
    return {};
  });
  add('im.contacts.remove', z.object({ user }).strict(), async (u, p) => ({ removed: await im.removeContact(u, p.user) }));
  add('im.contacts.list', z.object({}).strict(), async (u) => ({ contacts: await im.contacts(u) }));
}
