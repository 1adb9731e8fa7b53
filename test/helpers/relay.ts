/**
 * A TCP relay over real sockets in front of a server, for what a real server cannot be made to
 * do on demand: put several frames into one segment. Client → server bytes pass as they come;
 * each server → client chunk goes to the connection's `fromServer`, which decides when (and in
 * what pieces) to write it to the client.
 */
import { connect, createServer, type Socket } from 'node:net';

/** Per connection: what to do with a chunk from the server; `toClient` writes to the client. */
export type FromServer = (chunk: Buffer, toClient: (bytes: Buffer) => void) => void;

export interface Relay {
  /** `http://127.0.0.1:<port>` of the relay. */
  readonly url: string;
  /** Cut every relayed connection (to the client, the server is gone); new ones are still relayed. */
  cut(): void;
  /** Cut every relayed connection and stop listening. */
  close(): Promise<void>;
}

/** Listen on 127.0.0.1 (port 0) and relay to `port`; `perConnection` makes each connection's handler. */
export async function startRelay(port: number, perConnection: () => FromServer): Promise<Relay> {
  const sockets: Socket[] = [];
  const server = createServer((client) => {
    const upstream = connect(port, '127.0.0.1');
    sockets.push(client, upstream);
    const fromServer = perConnection();
    const toClient = (bytes: Buffer): void => void client.write(bytes);
    client.on('data', (d) => upstream.write(d));
    upstream.on('data', (d: Buffer) => fromServer(d, toClient));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const cut = (): void => {
    for (const s of sockets.splice(0)) s.destroy();
  };
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    cut,
    async close() {
      cut();
      await new Promise((r) => server.close(r));
    },
  };
}
