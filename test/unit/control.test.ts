import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retainUntil } from '../../src/core/control.js';
import { parseControlMessage } from '../../src/core/control-message.js';
import { DEFAULT_REVOCATION_TTL_MS } from '../../src/core/revocation.js';

void test('control messages from the wire: well-formed ones pass, malformed and unknown ones are refused', () => {
  const ok = [
    { type: 'disconnect', user: 'u', code: 3503, reason: 'r', from: 'n' },
    { type: 'disconnect', client: 'c', code: 4000, reason: '', from: 'n' },
    { type: 'revoke-jti', jti: 'j', expiresAt: 1, from: 'n' },
    { type: 'revoke-user', user: 'u', issuedBefore: 2, from: 'n' },
  ];
  for (const m of ok) assert.deepEqual(parseControlMessage(m), m);
  const bad: unknown[] = [
    undefined,
    null,
    'disconnect',
    [],
    { type: 'disconnect', user: 'u', code: 3503, reason: 'r' },
    { type: 'disconnect', user: 'u', code: '3503', reason: 'r', from: 'n' },
    { type: 'revoke-jti', jti: 5, expiresAt: 1, from: 'n' },
    { type: 'revoke-user', user: 'u', from: 'n' },
    { type: 'reboot', from: 'n' },
  ];
  for (const m of bad) assert.equal(parseControlMessage(m), undefined, JSON.stringify(m));
});

void test('revocations are retained until they stop mattering; disconnects are not retained', () => {
  assert.equal(retainUntil({ type: 'revoke-jti', jti: 'j', expiresAt: 1234 }), 1234);
  assert.equal(retainUntil({ type: 'revoke-user', user: 'u', issuedBefore: 1000 }), 1000 + DEFAULT_REVOCATION_TTL_MS);
  assert.equal(retainUntil({ type: 'disconnect', user: 'u', code: 3503, reason: 'r' }), undefined);
});
