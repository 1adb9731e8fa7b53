/**
 * Herald's side of the conformance route set: the same locations as nginx.conf.template,
 * written as `nchan.routes` entries of Herald's config.
 */
export function nchanTestRoutes(hookPort: number, deadPort: number): Record<string, unknown>[] {
  const hook = `http://127.0.0.1:${hookPort}`;
  const all = ['websocket', 'eventsource', 'longpoll', 'chunked', 'multipart-mixed'];
  return [
    { path: '/pub/', role: 'publisher', splitDelimiter: ',', bufferLength: 10, messageTimeoutMs: 3_600_000 },
    { path: '/pub_buf5/', role: 'publisher', bufferLength: 5 },
    { path: '/pub_buf1/', role: 'publisher', bufferLength: 1 },
    { path: '/pub_expire/', role: 'publisher', messageTimeoutMs: 2000 },
    { path: '/pub_nobuf/', role: 'publisher', storeMessages: false },
    { path: '/pub_cors/', role: 'publisher', allowOrigin: ['http://good.example'] },
    { path: '/pub_up/', role: 'publisher', publishUpstreamUrl: `${hook}/pub` },
    { path: '/pub_auth/', role: 'publisher', authorizeUrl: `${hook}/auth` },
    { path: '/pub_ev/', role: 'publisher', channelEvents: true },
    { path: '/sub/', role: 'subscriber', splitDelimiter: ',', maxChannelIdLength: 4096 },
    { path: '/lp/', role: 'subscriber', types: ['longpoll'] },
    { path: '/es/', role: 'subscriber', types: ['eventsource'], splitDelimiter: ',' },
    { path: '/ws/', role: 'subscriber', types: ['websocket'], splitDelimiter: ',' },
    { path: '/poll/', role: 'subscriber', types: ['intervalpoll'] },
    { path: '/raw/', role: 'subscriber', types: ['http-raw-stream'] },
    { path: '/newest/', role: 'subscriber', firstMessage: 'newest' },
    { path: '/first_m2/', role: 'subscriber', firstMessage: -2 },
    { path: '/first_p2/', role: 'subscriber', firstMessage: 2 },
    { path: '/es_ping/', role: 'subscriber', types: ['eventsource', 'websocket'], eventsourcePingIntervalMs: 1000, websocketPingIntervalMs: 1000 },
    { path: '/lpto/', role: 'subscriber', types: ['longpoll'], subscriberTimeoutMs: 1000 },
    { path: '/existing/', role: 'subscriber', existingChannelsOnly: true },
    { path: '/cors/', role: 'subscriber', allowOrigin: ['http://good.example'] },
    { path: '/nocred/', role: 'subscriber', allowCredentials: false },
    { path: '/auth/', role: 'subscriber', authorizeUrl: `${hook}/auth` },
    { path: '/auth_down/', role: 'subscriber', authorizeUrl: `http://127.0.0.1:${deadPort}/auth` },
    { path: '/cb/', role: 'subscriber', subscribeUrl: `${hook}/sub`, unsubscribeUrl: `${hook}/unsub` },
    { path: '/sub_ev/', role: 'subscriber', channelEvents: true },
    { path: '/meta/', role: 'subscriber', group: 'meta' },
    { path: '/pubsub/', role: 'pubsub', types: all },
    { path: '/pubsub_up/', role: 'pubsub', types: all, publishUpstreamUrl: `${hook}/pub` },
    { path: '/nchan_stub_status', role: 'status' },
  ];
}
