/** herald-push-client: the Herald SDK for browsers and Node. */
export {
  HeraldClient,
  type ClientOptions,
  type ClientState,
  type ClientEvents,
  type DisconnectedEvent,
  type HistoryOptions,
  type HistoryResult,
} from './client.js';
export { Subscription, type SubscribeOptions, type SubscribedEvent, type SubscriptionEvents, type SubscriptionState } from './subscription.js';
export { ClientCode, DisconnectCode, ErrorCode, PROTOCOL_VERSION, shouldReconnect } from './codes.js';
export { HeraldClientError } from './errors.js';
export {
  formatPosition,
  parsePosition,
  type Position,
  type Publication,
  type TransportName,
  type ConnectInfo,
  type WebSocketCtor,
  type EventSourceCtor,
} from './types.js';
export {
  ImClient,
  type ImClientOptions,
  type ImConversation,
  type ImEvents,
  type ImMember,
  type ImMessage,
  type ImMessageEvent,
  type ImPresence,
  type ImSendAck,
  type ImTarget,
} from './im.js';
