/**
 * The server under test for the Nchan conformance suite, chosen by
 * `HERALD_CONFORMANCE_TARGET=nchan|herald` (default herald): real Nchan started from
 * nginx.conf.template, or Herald in-process on port 0 with the same route set. Both get a
 * real hook server (test/helpers/nchan-hooks.ts) for the authorize, callback and upstream hooks.
 */
import { startHookServer, type HookServer } from '../../helpers/nchan-hooks.js';
import { freePort, startNchan } from './start-nchan.js';
import { nchanTestRoutes } from './routes.js';

/** Which server the suite runs against. */
export const TARGET: 'nchan' | 'herald' = process.env.HERALD_CONFORMANCE_TARGET === 'nchan' ? 'nchan' : 'herald';
/** True when the suite runs against Herald (for Herald's documented differences from Nchan). */
export const IS_HERALD = TARGET === 'herald';

/** A running target. */
export interface Target {
  readonly name: 'nchan' | 'herald';
  /** Base URL, e.g. `http://127.0.0.1:12345` (no trailing slash). */
  readonly base: string;
  readonly hooks: HookServer;
  stop(): Promise<void>;
}

/** Start the target named by the environment, plus its hook server. */
export async function startTarget(): Promise<Target> {
  const hooks = await startHookServer();
  if (TARGET === 'nchan') {
    const n = await startNchan({ hookPort: hooks.port });
    return { name: 'nchan', base: n.baseUrl, hooks, async stop() { await n.stop(); await hooks.close(); } };
  }
  const deadPort = await freePort();
  const { startHerald } = await import('./herald-target.js');
  const h = await startHerald(nchanTestRoutes(hooks.port, deadPort));
  return { name: 'herald', base: h.baseUrl, hooks, async stop() { await h.stop(); await hooks.close(); } };
}
