/**
 * The server under test for the Nchan conformance suite, chosen by
 * `HERALD_CONFORMANCE_TARGET=nchan|herald` (default herald): real Nchan started from
 * nginx.conf.template, or Herald in-process on port 0 with the same route set. Both get a
 * real hook server (test/helpers/nchan-hooks.ts) for the authorize, callback and upstream hooks.
 */
import { before, after, beforeEach, afterEach } from 'node:test';
import { startHookServer, type HookServer } from '../../helpers/nchan-hooks.js';
import { FileTranscript } from './transcript.js';
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
    return {
      name: 'nchan',
      base: n.baseUrl,
      hooks,
      async stop() {
        await n.stop();
        await hooks.close();
      },
    };
  }
  const deadPort = await freePort();
  const { startHerald } = await import('./herald-target.js');
  const h = await startHerald(nchanTestRoutes(hooks.port, deadPort));
  return {
    name: 'herald',
    base: h.baseUrl,
    hooks,
    async stop() {
      await h.stop();
      await hooks.close();
    },
  };
}

/**
 * Start the target before the enclosing describe's tests and stop it after them, and compare
 * every response of every test with real Nchan's recorded answers (./transcript.ts). Call in a
 * describe body; `file` names the recording (golden/<file>.json). The returned object is the
 * running target once the tests run.
 */
export function useTarget(file: string): Target {
  let t: Target | undefined;
  const transcript = new FileTranscript(file, TARGET);
  before(async () => {
    transcript.load();
    t = await startTarget();
  });
  beforeEach((ctx) => {
    transcript.begin(ctx.name);
  });
  afterEach(async () => {
    await transcript.end();
  });
  after(async () => {
    await t?.stop();
    transcript.save();
  });
  const running = (): Target => {
    if (!t) throw new Error('target not started');
    return t;
  };
  return {
    name: TARGET,
    get base() {
      return running().base;
    },
    get hooks() {
      return running().hooks;
    },
    stop: () => running().stop(),
  };
}
