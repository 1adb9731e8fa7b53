/**
 * The SDK's `rpc()` and `send()` against a real server with the backend hooks of the example
 * backend, over every transport (WebSocket frames, or HTTP POST commands beside SSE/long-poll).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { HeraldClientError } from '../../clients/js/src/index.js';
import { type ExampleBackend, startBackend } from '../../examples/backend.js';
import type { HeraldServer } from '../../src/index.js';
import { sdkClient, TRANSPORTS } from '../helpers/sdk.js';
import { startServer, waitFor } from '../helpers/server.js';

describe('SDK rpc() and send()', () => {
  let backend: ExampleBackend;
  let server: HeraldServer;
  before(async () => {
    backend = await startBackend();
    server = await startServer({
      dev: true,
      backend: { url: `${backend.url}/herald`, rpcTimeoutMs: 700, webhookUrl: `${backend.url}/webhook`, webhookIntervalMs: 10 },
    });
  });
  after(async () => {
    await server.close();
    await backend.close();
  });

  for (const transport of TRANSPORTS) {
    test(`${transport}: rpc resolves with the backend's answer and rejects with its error; send reaches the backend`, async () => {
      const user = `sdk-${transport}`;
      const client = sdkClient(server, transport, { user });
      try {
        await client.connect();
        assert.deepEqual(await client.rpc('echo', { x: 1 }), { echo: { x: 1 }, user });
        assert.equal(await client.rpc<number>('add', { a: 2, b: 3 }), 5);
        await assert.rejects(client.rpc('fail'), (err: unknown) => err instanceof HeraldClientError && err.errorName !== 'HERALD_ERR_BACKEND_TIMEOUT');
        await assert.rejects(
          client.rpc('slow', { ms: 1_500 }),
          (err: unknown) => err instanceof HeraldClientError && err.errorName === 'HERALD_ERR_BACKEND_TIMEOUT' && err.temporary,
        );
        await client.send({ hello: transport });
        await waitFor(() => backend.events.some((e) => e.type === 'client.message' && e.data.user === user), 3_000, 'client.message');
        assert.deepEqual(backend.events.find((e) => e.type === 'client.message' && e.data.user === user)!.data.data, { hello: transport });
      } finally {
        client.disconnect();
      }
    });
  }
});
