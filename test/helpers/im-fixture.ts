/**
 * One IM server per suite: a temporary data directory holding the SQLite IM store, a server on
 * port 0, user names unique per test (the store is shared by the suite's tests), and the
 * suite's clients (native and XMPP) closed after each test. Call `useImServer` inside `describe`: it registers
 * the suite's before/afterEach/after hooks.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before } from 'node:test';
import { xml as xmppXml } from '@xmpp/client';
import type { HeraldServer } from '../../src/index.js';
import { ImPoll, ImWs } from './im-clients.js';
import { startServer, wsUrl } from './server.js';
import { connectXmpp, type XmppHandle, type XmppOptions } from './xmpp.js';

type Config = Parameters<typeof startServer>[0];

/** What a suite reaches through the fixture (valid from its `before` hook on). */
export interface ImFixture {
  readonly server: HeraldServer;
  /** The native WebSocket endpoint. */
  readonly url: string;
  /** The suite's temporary data directory. */
  readonly dir: string;
  /** `names('alice', 'bob')` → `['alice7', 'bob7']`: fresh names for one test. */
  names(...base: string[]): string[];
  /** The number the last `names` call appended (for more names of the same test). */
  readonly n: number;
  /** A WebSocket IM client of `user`, closed after the test. */
  connect(user: string, opts?: Parameters<typeof ImWs.connect>[2]): Promise<ImWs>;
  /**
   * An online @xmpp/client, stopped after the test; `available`: it also sends its initial
   * presence and waits for the server's echo of it.
   */
  xmpp(o: XmppOptions & { available?: boolean }): Promise<XmppHandle>;
  /** A long-poll IM client of `user`, stopped after the test. */
  poller(user: string): ImPoll;
  /** The user's inbox head in the store. */
  head(user: string): Promise<number>;
}

/**
 * Register the hooks of an IM suite. `config(dir)` gives the server's configuration; unless it
 * sets `im.storePath` or `dataDir`, the store is `<dir>/im.db`.
 */
export function useImServer(prefix: string, config: (dir: string) => Config): ImFixture {
  let server: HeraldServer | undefined;
  let dir = '';
  let n = 0;
  const clients: ImWs[] = [];
  const polls: ImPoll[] = [];
  const xmpps: XmppHandle[] = [];
  const started = (): HeraldServer => {
    if (!server) throw new Error('the IM fixture is used before its before() hook ran');
    return server;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), `herald-${prefix}-`));
    const cfg = config(dir) ?? {};
    const im = (cfg as { im?: Record<string, unknown> }).im ?? {};
    const storePath = (cfg as { dataDir?: string }).dataDir === undefined && im.storePath === undefined ? join(dir, 'im.db') : im.storePath;
    server = await startServer({ ...cfg, im: { ...im, ...(storePath === undefined ? {} : { storePath }) } } as Config);
  });
  afterEach(async () => {
    for (const p of polls.splice(0)) await p.stop();
    for (const c of clients.splice(0)) await c.close();
    for (const x of xmpps.splice(0)) await x.stop();
  });
  after(async () => {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  return {
    get server() {
      return started();
    },
    get url() {
      return wsUrl(started());
    },
    get dir() {
      return dir;
    },
    get n() {
      return n;
    },
    names(...base: string[]): string[] {
      n++;
      return base.map((b) => `${b}${n}`);
    },
    async connect(user, opts) {
      const c = await ImWs.connect(wsUrl(started()), user, opts);
      clients.push(c);
      return c;
    },
    async xmpp(o) {
      const x = await connectXmpp(started(), o);
      xmpps.push(x);
      if (o.available) {
        await x.xmpp.send(xmppXml('presence'));
        await x.stanzas.take((st) => st.is('presence') && st.attrs.from === `${o.username}@${o.domain ?? 'localhost'}`);
      }
      return x;
    },
    poller(user) {
      const p = new ImPoll(started().url(), user);
      polls.push(p);
      return p;
    },
    async head(user) {
      return (await started().engines.imStore.cursor(user)).head;
    },
  };
}
