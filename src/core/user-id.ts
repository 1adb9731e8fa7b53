/**
 * The user-id rule, one for every place a user id comes in: token `sub` claims, development
 * names, the connect hook's answer, contact lists, IM users and the server API. 1–128
 * characters of `A-Z a-z 0-9 _ . @ -`.
 */
import { z } from 'zod';

/** What a user id looks like. */
export const USER_ID_RE = /^[A-Za-z0-9_.@-]{1,128}$/;

/** The rule in words, for error messages. */
export const USER_ID_RULE = 'user ids use A-Z a-z 0-9 _ . @ - (1-128 chars)';

/** The rule as a schema (config, API bodies). */
export const userIdSchema = z.string().regex(USER_ID_RE, USER_ID_RULE);
