/**
 * A real HTTP hook server for the Nchan conformance suite: it answers the authorize,
 * subscribe / unsubscribe callback and publisher-upstream requests that Nchan (through nginx
 * subrequests) and Herald's Nchan front send. Behaviour is chosen by the channel id or body:
 *
 * - `GET /auth`: channel `deny*` → 403, `weird*` → 406 with `X-Banana: yes`, `Content-Type:
 *   text/x-beef` and body `no beef`, `slow*` → 200 after 5 s (longer than the 2 s hook timeout),
 *   anything else → 200.
 * - `GET /sub`, `GET /unsub`: recorded, answered 200.
 * - `POST /pub`: body `transform*` → 200 with body `transformed <body>`, `keep*` → 304,
 *   `drop*` → 204, `fail*` → 500, anything else → 304.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the hook server received. */
export interface HookCall {
  readonly path: string;
  readonly channel: string;
  readonly subscriberType: string;
  readonly body: string;
  readonly headers: IncomingMessage['headers'];
}

/** A running hook server. */
export interface HookServer {
  readonly port: number;
  readonly calls: HookCall[];
  /** Wait until `pred` holds for the recorded calls (polls every 20 ms); rejects after `ms`. */
  waitFor(pred: (calls: HookCall[]) => boolean, ms?: number): Promise<void>;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** Start the hook server on 127.0.0.1 and a free port. */
export async function startHookServer(): Promise<HookServer> {
  const calls: HookCall[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    const path = (req.url ?? '/').split('?')[0]!;
    const channel = String(req.headers['x-channel-id'] ?? '');
    calls.push({ path, channel, subscriberType: String(req.headers['x-subscriber-type'] ?? ''), body, headers: req.headers });
    if (path === '/auth') {
      if (channel.startsWith('deny')) return void res.writeHead(403).end();
      if (channel.startsWith('weird')) {
        res.writeHead(406, { 'X-Banana': 'yes', 'Content-Type': 'text/x-beef' });
        return void res.end('no beef');
      }
      if (channel.startsWith('slow')) {
        const t = setTimeout(() => {
          timers.delete(t);
          res.writeHead(200).end();
        }, 5000);
        timers.add(t);
        return;
      }
      return void res.writeHead(200).end();
    }
    if (path === '/pub') {
      if (body.startsWith('transform')) return void res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`transformed ${body}`);
      if (body.startsWith('drop')) return void res.writeHead(204).end();
      if (body.startsWith('fail')) return void res.writeHead(500).end('upstream failed');
      return void res.writeHead(304).end();
    }
    res.writeHead(200).end();
  };
  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    calls,
    async waitFor(pred, ms = 3000) {
      const end = Date.now() + ms;
      while (!pred(calls)) {
        if (Date.now() > end) throw new Error(`hook calls did not match: ${JSON.stringify(calls.map((c) => [c.path, c.channel, c.subscriberType]))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close() {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
