/**
 * Refused client commands are logged the same way over WebSocket and `POST /connection/command`:
 * at debug level with the command, the transport and the error code (never the payload).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { WsClient } from '../helpers/clients.js';
import { captureLogger } from '../helpers/log-capture.js';
import { startServer, waitFor, wsUrl } from '../helpers/server.js';

describe('refused commands in the log', () => {
  const logger = captureLogger();
  let server: HeraldServer;
  before(async () => {
    server = await startServer({ dev: true }, { logger });
  });
  after(async () => {
    await server.close();
  });

  const refused = (transport: string, command: string): Array<Record<string, unknown>> =>
    logger.entries.filter((e) => e.msg === 'refused' && e.transport === transport && e.command === command);

  test('over WebSocket: the command, transport, client and code at debug level', async () => {
    const c = await WsClient.connected(wsUrl(server), { user: 'log-ws' });
    try {
      assert.ok((await c.command('bogus.command')).error);
      assert.ok((await c.command('publish', { channel: 'closed:x', data: { secret: 'payload-ws' } })).error);
      assert.ok((await c.command('history', { channel: '' })).error);
    } finally {
      await c.close();
    }
    await waitFor(() => refused('websocket', 'history').length === 1, 3_000, 'the history refusal logged');
    const [unknown] = refused('websocket', 'other');
    assert.equal(unknown?.level, 'debug');
    assert.equal(unknown?.code, 'HERALD_ERR_UNKNOWN_COMMAND');
    assert.equal(typeof unknown?.client, 'string');
    assert.equal(refused('websocket', 'history')[0]?.code, 'HERALD_ERR_INVALID_CHANNEL');
    assert.equal(JSON.stringify(logger.entries).includes('payload-ws'), false, 'no payload in the log');
  });

  test('over POST /connection/command: the same entries, transport http', async () => {
    const post = (body: unknown): Promise<Response> =>
      fetch(`${server.url()}/connection/command?user=log-http`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    assert.equal((await post({ id: 1, cmd: 'history', channel: '' })).status, 400);
    assert.ok((await post({ id: 2, cmd: 'bogus.command' })).status >= 400);
    assert.equal((await post({ id: 3, cmd: 'publish', channel: 'closed:x', data: { secret: 'payload-http' } })).status, 403);
    const [history] = refused('http', 'history');
    assert.equal(history?.level, 'debug');
    assert.equal(history?.code, 'HERALD_ERR_INVALID_CHANNEL');
    assert.equal(refused('http', 'other')[0]?.code, 'HERALD_ERR_UNKNOWN_COMMAND');
    assert.equal(refused('http', 'publish')[0]?.code, 'HERALD_ERR_FORBIDDEN');
    assert.equal(JSON.stringify(logger.entries).includes('payload-http'), false, 'no payload in the log');
  });
});
