/**
 * Publishing, channel info and deletion for the Nchan front: the parts shared by HTTP and
 * WebSocket publishers. Messages are stored and fanned out by the core with the route's buffer
 * length and timeout; the front adds Nchan ids, channel events and the upstream hook.
 */
import type { IncomingMessage } from 'node:http';
import type { HeraldCore } from '../../core/core.js';
import type { PublicationInput } from '../../core/publication.js';
import type { ChannelRegistry } from './channel-state.js';
import { hookHeaders, publishUpstream } from './hooks.js';
import type { NchanChannelInfo } from './info.js';
import { coreChannel, type NchanRoute } from './routes.js';

/** The group that receives channel events. */
export const META_GROUP = 'meta';

/** Result of publishing one message to one or more channels. */
export interface PublishOutcome {
  /** 201 (some subscriber), 202 (none), 204 (dropped by the upstream hook), or a failure status. */
  readonly status: number;
  /** Info of the last channel published to (undefined when dropped or failed). */
  readonly info?: NchanChannelInfo;
}

/** Publishing and channel-info services over the core. */
export class NchanChannels {
  readonly core: HeraldCore;
  readonly ids: ChannelRegistry;
  readonly #hookTimeoutMs: number;

  constructor(core: HeraldCore, ids: ChannelRegistry, hookTimeoutMs: number) {
    this.core = core;
    this.ids = ids;
    this.#hookTimeoutMs = hookTimeoutMs;
  }

  /** Whether the channel exists (has been published to or subscribed to and not deleted). */
  async exists(channel: string): Promise<boolean> {
    const [s] = await this.core.channels(channel, 1);
    return s?.channel === channel || this.core.hub.subscriberCount(channel) > 0;
  }

  /**
   * Channel info, or undefined when the channel does not exist. `subscribers` overrides the live
   * count; `known` skips the existence check (just published).
   */
  async info(channel: string, subscribers?: number, known = false): Promise<NchanChannelInfo | undefined> {
    if (!known && !(await this.exists(channel))) return undefined;
    const res = await this.core.history(channel, {});
    const st = this.ids.get(channel);
    st.prune(res.oldest);
    // Assign ids in offset order to publications this node has not seen yet (server API).
    for (const p of res.publications) st.idFor(p);
    if (res.position.epoch !== st.epoch && res.position.offset === 0) st.reset(res.position.epoch);
    const now = Date.now();
    return {
      messages: res.publications.length,
      requested: st.requestedAt ? Math.floor((now - st.requestedAt) / 1000) : -1,
      subscribers: subscribers ?? this.core.hub.subscriberCount(channel),
      lastMessageId: st.lastId(),
    };
  }

  /**
   * Publish one message to every channel of the route (after the upstream hook, if any).
   * `req` supplies the headers for the hook.
   */
  async publish(route: NchanRoute, ids: readonly string[], input: PublicationInput, req: IncomingMessage): Promise<PublishOutcome> {
    let msg = input;
    if (route.publishUpstreamUrl) {
      const headers = hookHeaders(req, ids.join(route.splitDelimiter ?? ','), {});
      const up = await publishUpstream(route.publishUpstreamUrl, headers, msg.payload, msg.contentType, this.#hookTimeoutMs);
      if (up.action === 'drop') return { status: 204 };
      if (up.action === 'fail') return { status: up.status };
      msg = { ...msg, payload: up.payload, contentType: up.contentType };
    }
    let anySubscriber = false;
    let info: NchanChannelInfo | undefined;
    for (const id of ids) {
      const channel = coreChannel(route.group, id);
      const before = this.core.hub.subscriberCount(channel);
      if (before > 0) anySubscriber = true;
      const pub = await this.core.publish(channel, msg, 'nchan', { historySize: route.bufferLength, historyTtlMs: route.messageTimeoutMs });
      this.ids.get(channel).idFor(pub);
      if (route.channelEvents) void this.event(`channel_publish ${id}`, id);
      info = await this.info(channel, before, true);
    }
    return { status: anySubscriber ? 201 : 202, info };
  }

  /** Delete channels; resolves the info (before deletion) of the last one that existed. */
  async delete(route: NchanRoute, ids: readonly string[]): Promise<NchanChannelInfo | undefined> {
    let info: NchanChannelInfo | undefined;
    for (const id of ids) {
      const channel = coreChannel(route.group, id);
      const i = await this.info(channel);
      if (!i) continue;
      info = i;
      await this.core.deleteChannel(channel);
      this.ids.delete(channel);
      if (route.channelEvents) void this.event(`channel_delete ${id}`, id);
    }
    return info;
  }

  /** Publish a channel event (`subscriber_enqueue X`, …) to the meta group's channel `X`. */
  async event(text: string, id: string): Promise<void> {
    try {
      const channel = coreChannel(META_GROUP, id);
      const pub = await this.core.publish(channel, { payload: Buffer.from(text) }, 'nchan', { historySize: 10, historyTtlMs: 3_600_000 });
      this.ids.get(channel).idFor(pub);
    } catch {
      // Channel events are best effort, as in Nchan.
    }
  }
}
