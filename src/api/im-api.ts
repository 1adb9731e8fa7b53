/**
 * IM endpoints of the server API: `POST /api/im/users` registers users (so they can be messaged
 * before their first connection), `POST /api/im/send` sends as a user (the backend speaks for it).
 */
import { z } from 'zod';
import type { ImService } from '../core/im/service.js';
import { parseBody, parseJson, readBody } from '../transports/http.js';
import type { ServerApi } from './api.js';

const usersBody = z
  .object({
    users: z
      .array(z.object({ id: z.string(), name: z.string().max(256).optional() }).strict())
      .min(1)
      .max(10_000),
  })
  .strict();
const sendBody = z
  .object({ from: z.string(), to: z.string().optional(), conversation: z.string().optional(), clientId: z.string().min(1).max(128), data: z.unknown() })
  .strict();

/** Add the IM routes to the server API. */
export function registerImApi(api: ServerApi, im: ImService, maxBody: number): void {
  api.route('POST', /^im\/users$/, async (req) => {
    const body = parseBody(usersBody, parseJson(await readBody(req, maxBody)));
    for (const u of body.users) await im.registerUser(u.id, u.name);
    return { registered: body.users.length };
  });
  api.route('POST', /^im\/send$/, async (req) => {
    const b = parseBody(sendBody, parseJson(await readBody(req, maxBody)));
    // The backend speaks for `from`: it is registered if new.
    await im.registerUser(b.from);
    return im.send(b.from, { to: b.to, conversation: b.conversation, clientId: b.clientId, data: b.data });
  });
}
