/**
 * Cluster control: admin actions that every node applies to its own connections and state —
 * disconnect a user or one session, revoke a token id or a user's tokens issued before a time.
 * The node that takes the request applies the action at once (so its answer can report the
 * local effect), then sends it to the other nodes through the broker (`Broker.control`); each
 * applies it when it arrives. Every action is idempotent: applying it twice (a replay at start,
 * the sender's own echo) changes nothing more.
 */
import type { Backend } from './backend.js';
import type { Hub } from './hub.js';
import { DisconnectCode } from '../protocol/codes.js';
import type { ControlAction } from './control-message.js';
import { DEFAULT_REVOCATION_TTL_MS } from './revocation.js';

/**
 * Apply an action to this node's hub and backend state; returns how many local connections it
 * closed.
 */
export function applyControl(hub: Hub, backend: Backend, action: ControlAction): number {
  switch (action.type) {
    case 'disconnect': {
      let closed = 0;
      for (const conn of hub.connections()) {
        if ((action.user !== undefined && conn.user === action.user) || (action.client !== undefined && conn.id === action.client)) {
          conn.disconnect(action.code, action.reason);
          closed++;
        }
      }
      // Cached backend answers for the user (subscribe, contacts) are asked again after a kick.
      if (action.user !== undefined) backend.invalidate(action.user);
      return closed;
    }
    case 'revoke-jti':
      backend.revocations.revokeJti(action.jti, action.expiresAt);
      return closeRevoked(hub, backend);
    case 'revoke-user':
      backend.revocations.revokeBefore(action.user, action.issuedBefore);
      return closeRevoked(hub, backend);
  }
}

/**
 * Until when (ms since the epoch) the broker keeps an action for nodes that start later, or
 * undefined when it is not kept. A jti revocation is kept until the token expires; a user-wide
 * one for a day past `issuedBefore` (tokens are expected to live at most a day, like an unknown
 * jti expiry, DEFAULT_REVOCATION_TTL_MS). A disconnect concerns live sessions only.
 */
export function retainUntil(action: ControlAction): number | undefined {
  if (action.type === 'revoke-jti') return action.expiresAt;
  if (action.type === 'revoke-user') return action.issuedBefore + DEFAULT_REVOCATION_TTL_MS;
  return undefined;
}

/** Close (3500) every local connection whose token is now revoked. */
function closeRevoked(hub: Hub, backend: Backend): number {
  let closed = 0;
  for (const conn of hub.connections()) {
    const identity = conn.identity ?? (conn.user !== undefined ? { user: conn.user, claims: {} } : undefined);
    if (identity && backend.revocations.isRevoked(identity)) {
      conn.disconnect(DisconnectCode.INVALID_TOKEN, 'token revoked');
      closed++;
    }
  }
  return closed;
}
