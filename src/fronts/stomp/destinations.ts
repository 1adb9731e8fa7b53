/**
 * STOMP destinations mapped onto Herald, in the style RabbitMQ's web-STOMP users know:
 *
 * | destination              | Herald                                                     |
 * |--------------------------|------------------------------------------------------------|
 * | `/topic/<name>`          | channel `<name>`                                           |
 * | `/exchange/<name>/<key>` | channel `<name>:<key>` (namespace `<name>` picks the policy) |
 * | `/queue/<name>`          | work queue `<name>` of this node (round-robin, acked)      |
 * | `/amq/queue/<name>`      | the same work queue                                        |
 * | `/user/inbox`            | the connected user's IM inbox channel (`inbox:<user>`)     |
 */
import type { Identity } from '../../core/auth.js';
import { isValidChannel } from '../../core/channels.js';
import { HeraldError } from '../../core/errors.js';
import { inboxChannel } from '../../core/im/service.js';

/** Where a destination leads. */
export type Destination =
  /** A pub/sub channel (`/topic`, `/exchange`). */
  | { readonly kind: 'channel'; readonly channel: string }
  /** The user's own IM inbox channel (read-only). */
  | { readonly kind: 'inbox'; readonly channel: string }
  /** A work queue. */
  | { readonly kind: 'queue'; readonly queue: string };

/** The destination users subscribe to for their IM inbox. */
export const INBOX_DESTINATION = '/user/inbox';

/**
 * Resolve a destination header. Throws HERALD_ERR_INVALID_CHANNEL for names that are not valid
 * channel names, HERALD_ERR_NOT_FOUND for unknown prefixes and HERALD_ERR_UNAUTHORIZED for the
 * inbox of an anonymous connection.
 */
export function resolveDestination(dest: string, identity: Identity | undefined, maxNameLength: number): Destination {
  if (dest.startsWith('/topic/')) return { kind: 'channel', channel: checked(dest.slice(7), maxNameLength) };
  if (dest.startsWith('/exchange/')) {
    const rest = dest.slice(10);
    const slash = rest.indexOf('/');
    if (slash <= 0 || slash === rest.length - 1) {
      throw new HeraldError('HERALD_ERR_BAD_REQUEST', 'Exchange destinations are /exchange/<name>/<routing-key>');
    }
    return { kind: 'channel', channel: checked(`${rest.slice(0, slash)}:${rest.slice(slash + 1)}`, maxNameLength) };
  }
  if (dest.startsWith('/queue/')) return { kind: 'queue', queue: checked(dest.slice(7), maxNameLength) };
  if (dest.startsWith('/amq/queue/')) return { kind: 'queue', queue: checked(dest.slice(11), maxNameLength) };
  if (dest === INBOX_DESTINATION) {
    if (!identity) throw new HeraldError('HERALD_ERR_UNAUTHORIZED', `${INBOX_DESTINATION} needs an authenticated connection`);
    return { kind: 'inbox', channel: inboxChannel(identity.user) };
  }
  throw new HeraldError('HERALD_ERR_NOT_FOUND', 'Unknown destination: use /topic/<name>, /exchange/<name>/<key>, /queue/<name> or /user/inbox');
}

function checked(name: string, maxLength: number): string {
  if (!isValidChannel(name, maxLength)) {
    throw new HeraldError('HERALD_ERR_INVALID_CHANNEL', `Invalid destination name: 1-${maxLength} characters of A-Z a-z 0-9 _ - . : @ / = + ! ~ #`);
  }
  return name;
}
