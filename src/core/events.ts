/**
 * Diagnostics events. Core publishes on `node:diagnostics_channel` channels (process-wide, so every
 * payload names the emitting node); the api layer
 * subscribes and turns them into metrics. Publishing is free when nobody subscribes.
 */
import diagnostics from 'node:diagnostics_channel';

/** A publication was accepted: `{ channel, bytes, source }`. */
export const publishEvents = diagnostics.channel('herald:publish');
/** A publication was fanned out locally: `{ channel, delivered, latencyMs }`. */
export const fanoutEvents = diagnostics.channel('herald:fanout');
/** A connection opened: `{ transport }`. */
export const connectEvents = diagnostics.channel('herald:connect');
/** A connection closed: `{ transport, code }`. */
export const disconnectEvents = diagnostics.channel('herald:disconnect');
/** A slow consumer was dropped: `{ transport }`. */
export const slowConsumerEvents = diagnostics.channel('herald:slow-consumer');
/** A client command was answered with an error: `{ command, code, transport }`. */
export const commandErrorEvents = diagnostics.channel('herald:command-error');

/** Payload of `herald:publish`. */
export interface PublishEvent {
  /** Id of the node (core) that emitted the event. */
  readonly node: string;
  readonly channel: string;
  readonly bytes: number;
  /** Who published: `api`, `client`, `nchan`, … */
  readonly source: string;
}

/** Payload of `herald:fanout`. */
export interface FanoutEvent {
  readonly node: string;
  readonly channel: string;
  readonly delivered: number;
  /** Time from publication to local fan-out, ms. */
  readonly latencyMs: number;
}

/** Payload of `herald:connect` / `herald:disconnect` / `herald:slow-consumer`. */
export interface ConnectionEvent {
  readonly node: string;
  readonly transport: string;
  readonly code?: number;
}

/** Payload of `herald:command-error`. */
export interface CommandErrorEvent {
  readonly node: string;
  /** The command name, or `other` for one the front does not know (labels stay bounded). */
  readonly command: string;
  /** The error's stable code, e.g. `HERALD_ERR_FORBIDDEN`. */
  readonly code: string;
  readonly transport: string;
}
