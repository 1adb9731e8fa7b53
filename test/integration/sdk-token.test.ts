/**
 * Token handling of the SDK on every transport: the token comes from `getToken`, an expired or
 * rejected token is refreshed through the callback, and a client without a way to refresh stops.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { DisconnectCode } from '../../clients/js/src/index.js';
import type { HeraldServer } from '../../src/index.js';
import { PubLog, sdkClient, TRANSPORTS } from '../helpers/sdk.js';
import { chan, publish, startServer, waitFor } from '../helpers/server.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';

for (const transport of TRANSPORTS) {
  void describe(`SDK tokens over ${transport}`, () => {
    let server: HeraldServer;
    before(async () => {
      server = await startServer({ auth: { hmacSecret: TEST_SECRET }, channels: { requireToken: true } });
    });
    after(async () => {
      await server.close();
    });

    void it('gets its token from the callback and refreshes a rejected one', async () => {
      let calls = 0;
      const getToken = async (): Promise<string> => {
        calls++;
        // The first token is already expired: the server refuses it and the SDK asks again.
        return calls === 1 ? signToken('tina', {}, { exp: Math.floor(Date.now() / 1000) - 60 }) : signToken('tina');
      };
      const c = sdkClient(server, transport, { getToken });
      try {
        const ch = chan('tok');
        const log = new PubLog(c.subscribe(ch));
        await c.connect();
        assert.equal(calls, 2);
        assert.equal(c.info?.user, 'tina');
        await c.getSubscription(ch)!.ready();
        await publish(server, ch, 'secret news');
        await log.count(1);
      } finally {
        c.disconnect();
      }
    });

    void it('asks for a new token when the server drops the session with 3500', async () => {
      let calls = 0;
      const c = sdkClient(server, transport, {
        getToken: async () => {
          calls++;
          return signToken('uma');
        },
      });
      try {
        const ch = chan('tok');
        const sub = c.subscribe(ch);
        await c.connect();
        await sub.ready();
        await waitFor(() => server.core.hub.subscriberCount(ch) > 0, 3_000, 'live subscription');
        for (const conn of server.core.hub.connections()) conn.disconnect(DisconnectCode.INVALID_TOKEN, 'token expired');
        await waitFor(() => calls === 2 && c.state === 'connected', 5_000, 'token refresh and reconnect');
      } finally {
        c.disconnect();
      }
    });

    void it('stops when the token is rejected and there is no callback', async () => {
      const c = sdkClient(server, transport, { token: 'not-a-jwt' });
      await assert.rejects(c.connect());
      assert.equal(c.state, 'closed');
    });
  });
}
