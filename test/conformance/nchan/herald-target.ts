/** Herald in-process on 127.0.0.1:0 with the conformance route set and the Nchan front. */
import { createServer } from '../../../src/index.js';
import { attachNchanFront } from '../../../src/fronts/nchan/front.js';

/**
 * Start Herald with `routes` as `nchan.routes`; hooks time out after 2 s like the nginx config.
 * Loopback is trusted, as the nginx config lets loopback publish, and the origins the tests play
 * are listed (Nchan's default answers every origin with credentials; Herald only listed ones).
 */
export async function startHerald(routes: Record<string, unknown>[]): Promise<{ baseUrl: string; stop(): Promise<void> }> {
  const server = createServer({
    config: {
      port: 0,
      host: '127.0.0.1',
      trustLoopback: true,
      allowedOrigins: ['http://any.example', 'http://x.example', 'http://good.example'],
      logLevel: 'silent',
      nchan: { routes, hookTimeoutMs: 2000 },
      timing: { shutdownTimeoutMs: 200 },
    },
    processMetrics: false,
  });
  // Attach the front unless the server composition already did.
  if (!server.nchan) attachNchanFront(server);
  await server.listen();
  return { baseUrl: server.url(), stop: () => server.close() };
}
