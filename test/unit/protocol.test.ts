import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { assertChannel, isValidChannel, namespaceOf } from '../../src/core/channels.js';
import { ERRORS, HeraldError, toHeraldError } from '../../src/core/errors.js';
import { DisconnectCode, ErrorCode, shouldReconnect } from '../../src/protocol/codes.js';
import { COMMAND_SCHEMAS, decodeCommand, validateParams } from '../../src/protocol/frames.js';
import { MAX_JSON_DEPTH, jsonDepthExceeds, parsePeerJson } from '../../src/protocol/json.js';

describe('decodeCommand', () => {
  test('splits id and cmd from the params', () => {
    assert.deepEqual(decodeCommand('{"id":3,"cmd":"subscribe","channel":"a"}'), { id: 3, cmd: 'subscribe', params: { channel: 'a' } });
    assert.deepEqual(decodeCommand('{"cmd":"ping"}'), { id: undefined, cmd: 'ping', params: {} });
  });

  test('rejects malformed JSON, non-objects, bad ids and missing commands', () => {
    assert.equal((decodeCommand('{') as { kind: string }).kind, 'json');
    for (const text of ['[]', '1', 'null', '{"id":-1,"cmd":"x"}', '{"id":1.5,"cmd":"x"}', '{"id":"1","cmd":"x"}', '{"id":1}', `{"cmd":"${'x'.repeat(65)}"}`]) {
      assert.equal((decodeCommand(text) as { kind: string }).kind, 'shape', text);
    }
  });

  test('params are validated strictly, listing every problem', () => {
    const r = validateParams(COMMAND_SCHEMAS.subscribe, { channel: 1, last: -1, extra: true });
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.match(r.message, /channel/);
      assert.match(r.message, /last/);
      assert.match(r.message, /extra|unrecognized/i);
    }
    assert.deepEqual(validateParams(COMMAND_SCHEMAS.history, { channel: 'a', limit: 2 }), { ok: true, value: { channel: 'a', limit: 2 } });
  });
});

describe('codes', () => {
  test('disconnect codes below 3500 mean reconnect, 3500-4999 do not', () => {
    for (const code of [
      DisconnectCode.SHUTDOWN,
      DisconnectCode.NO_PONG,
      DisconnectCode.SLOW_CONSUMER,
      DisconnectCode.CONNECT_TIMEOUT,
      DisconnectCode.TOO_MANY_CONNECTIONS,
    ]) {
      assert.equal(shouldReconnect(code), true, String(code));
    }
    for (const code of [DisconnectCode.BAD_REQUEST, DisconnectCode.INVALID_TOKEN, DisconnectCode.TOO_MANY_REQUESTS, 4000, 4999]) {
      assert.equal(shouldReconnect(code), false, String(code));
    }
  });

  test('error and disconnect codes are unique', () => {
    assert.equal(new Set(Object.values(ErrorCode)).size, Object.values(ErrorCode).length);
    assert.equal(new Set(Object.values(DisconnectCode)).size, Object.values(DisconnectCode).length);
  });
});

describe('errors', () => {
  test('every registered error has an HTTP status and a wire code', () => {
    for (const [code, spec] of Object.entries(ERRORS)) {
      assert.match(code, /^HERALD_ERR_[A-Z_]+$/);
      assert.ok(spec.status >= 400 && spec.status < 600, code);
      assert.ok(Object.values(ErrorCode).includes(spec.wire), code);
    }
  });

  test('unknown errors become an internal error that keeps the cause but not the message', () => {
    const cause = new Error('secret detail');
    const e = toHeraldError(cause);
    assert.equal(e.code, 'HERALD_ERR_INTERNAL');
    assert.equal(e.status, 500);
    assert.equal(e.message.includes('secret'), false);
    assert.equal(e.cause, cause);
    const known = new HeraldError('HERALD_ERR_NOT_FOUND');
    assert.equal(toHeraldError(known), known);
  });
});

describe('channel names', () => {
  test('names are 1..max characters of the allowed set; the namespace is before the first colon', () => {
    for (const ok of ['a', 'news:sport', 'a.b-c_d@e/f=g+h!i~j#k', 'x'.repeat(10)]) assert.equal(isValidChannel(ok, 10 + 40), true, ok);
    for (const bad of ['', 'a b', 'é', 'a?b', 'x'.repeat(11), 5, undefined]) assert.equal(isValidChannel(bad, 10), false, String(bad));
    assert.throws(
      () => assertChannel('a b', 10),
      (e: unknown) => e instanceof HeraldError && e.code === 'HERALD_ERR_INVALID_CHANNEL',
    );
    assert.equal(namespaceOf('news:sport:uk'), 'news');
    assert.equal(namespaceOf('plain'), undefined);
    assert.equal(namespaceOf(':x'), undefined);
  });
});

describe('peer JSON depth', () => {
  const nested = (d: number): string => '{"a":'.repeat(d) + '1' + '}'.repeat(d);
  test('accepts nesting up to MAX_JSON_DEPTH and refuses one level more', () => {
    assert.equal(parsePeerJson(nested(MAX_JSON_DEPTH)).ok, true);
    assert.deepEqual(parsePeerJson(nested(MAX_JSON_DEPTH + 1)), { ok: false, reason: 'depth' });
  });
  test('brackets and escaped quotes inside strings do not count', () => {
    const s = JSON.stringify({ s: '['.repeat(500) + '\\"{{{' + '{'.repeat(500) });
    assert.equal(jsonDepthExceeds(s), false);
    assert.equal(parsePeerJson(s).ok, true);
  });
  test('refuses 100,000-deep input without recursion', () => {
    assert.equal(jsonDepthExceeds('['.repeat(100_000) + ']'.repeat(100_000)), true);
  });
  test('reports syntax errors apart from depth', () => {
    assert.deepEqual(parsePeerJson('{"a":'), { ok: false, reason: 'syntax' });
  });
  test('decodeCommand answers depth with the command id', () => {
    const r = decodeCommand(`{"id":9,"cmd":"publish","channel":"c","data":${nested(MAX_JSON_DEPTH + 1)}}`);
    assert.ok('kind' in r && r.kind === 'depth' && r.id === 9);
  });
});
