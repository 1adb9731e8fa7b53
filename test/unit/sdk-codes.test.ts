/** The SDK's copy of the wire codes (clients/js/src/codes.ts) stays equal to the server's (src/protocol/codes.ts). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as sdk from '../../clients/js/src/codes.js';
import * as server from '../../src/protocol/codes.js';

describe('wire codes: SDK and server agree', () => {
  test('protocol version, error codes and disconnect codes are equal', () => {
    assert.equal(sdk.PROTOCOL_VERSION, server.PROTOCOL_VERSION);
    assert.deepEqual(sdk.ErrorCode, server.ErrorCode);
    assert.deepEqual(sdk.DisconnectCode, server.DisconnectCode);
  });

  test('the SDK reconnects exactly when the server says a code means reconnect', () => {
    for (let code = 1000; code < 5100; code++) assert.equal(sdk.shouldReconnect(code), server.shouldReconnect(code), `code ${code}`);
  });
});
