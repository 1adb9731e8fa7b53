/**
 * The cluster control messages (core/control.ts applies them): the admin actions every node
 * applies, as sent between nodes through the broker, and the check of one that came over the
 * wire. A leaf module, so that the broker interface and the engines can name these types
 * without importing the hub or the backend that applying them needs.
 */
import { z } from 'zod';

/** Close every local session of `user`, or the one session whose connection id is `client`. */
export interface DisconnectAction {
  readonly type: 'disconnect';
  readonly user?: string;
  readonly client?: string;
  /** Close code sent to the client (3000–4999). */
  readonly code: number;
  readonly reason: string;
}

/** Refuse the token with this `jti` until `expiresAt` (ms since the epoch) and close the sessions holding it. */
export interface RevokeJtiAction {
  readonly type: 'revoke-jti';
  readonly jti: string;
  readonly expiresAt: number;
}

/** Refuse every token of `user` issued before `issuedBefore` (ms since the epoch) and close the sessions holding one. */
export interface RevokeUserAction {
  readonly type: 'revoke-user';
  readonly user: string;
  readonly issuedBefore: number;
}

/** An admin action applied on every node. */
export type ControlAction = DisconnectAction | RevokeJtiAction | RevokeUserAction;

/** A control action as sent between nodes: the action plus the sending node's id (HeraldCore.nodeId). */
export type ControlMessage = ControlAction & { readonly from: string };

const controlSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('disconnect'),
    user: z.string().optional(),
    client: z.string().optional(),
    code: z.number().int(),
    reason: z.string(),
    from: z.string(),
  }),
  z.object({ type: z.literal('revoke-jti'), jti: z.string(), expiresAt: z.number(), from: z.string() }),
  z.object({ type: z.literal('revoke-user'), user: z.string(), issuedBefore: z.number(), from: z.string() }),
]);

/**
 * Check a control message that came over the wire (engines decode JSON from other processes);
 * undefined when it is malformed or of an unknown type (a newer node in a mixed-version cluster).
 */
export function parseControlMessage(value: unknown): ControlMessage | undefined {
  const r = controlSchema.safeParse(value);
  return r.success ? r.data : undefined;
}
