/**
 * Admin page sessions. Signing in on the admin page (`POST /admin/login` with the API key) sets
 * the `herald_admin` cookie: HttpOnly (no script on the page can read it), SameSite=Strict,
 * Secure when the server speaks TLS. Its value is `<expiry ms>.<HMAC-SHA256 of the expiry under
 * the API key>`: stateless, so every node sharing the key accepts it, and changing the key ends
 * every session. The key itself never lives in the browser.
 */
import { createHmac } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { keyEquals } from '../core/net-policy.js';

/** Name of the admin session cookie. */
export const ADMIN_COOKIE = 'herald_admin';

/** How long an admin session lasts, ms (12 hours). */
export const ADMIN_SESSION_MS = 12 * 60 * 60 * 1000;

function mac(apiKey: string, expires: number): string {
  return createHmac('sha256', apiKey).update(`herald-admin-session\0${expires}`).digest('base64url');
}

/** A new session value for `apiKey`, valid for ADMIN_SESSION_MS from `now`. */
export function newAdminSession(apiKey: string, now = Date.now()): string {
  const expires = now + ADMIN_SESSION_MS;
  return `${expires}.${mac(apiKey, expires)}`;
}

/** The `Set-Cookie` value that starts a session (`value`) or ends one (`undefined`). */
export function adminCookie(value: string | undefined, secure: boolean): string {
  const life = value === undefined ? 'Max-Age=0' : `Max-Age=${ADMIN_SESSION_MS / 1000}`;
  return `${ADMIN_COOKIE}=${value ?? ''}; Path=/; HttpOnly; SameSite=Strict; ${life}${secure ? '; Secure' : ''}`;
}

/** The admin session cookie of a request ('' when present but empty), undefined when absent. */
export function adminSessionCookie(req: IncomingMessage): string | undefined {
  const m = new RegExp(`(?:^|;\\s*)${ADMIN_COOKIE}=([^;]*)`).exec(req.headers.cookie ?? '');
  return m ? m[1]! : undefined;
}

/** Whether the request carries an unexpired session signed with `apiKey` (compared in constant time). */
export function hasAdminSession(req: IncomingMessage, apiKey: string | undefined, now = Date.now()): boolean {
  if (apiKey === undefined || apiKey === '') return false;
  const value = adminSessionCookie(req);
  const dot = value?.indexOf('.') ?? -1;
  if (value === undefined || dot <= 0) return false;
  const expires = Number(value.slice(0, dot));
  if (!Number.isSafeInteger(expires) || expires <= now || expires > now + ADMIN_SESSION_MS) return false;
  return keyEquals(value.slice(dot + 1), mac(apiKey, expires));
}
