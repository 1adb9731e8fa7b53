/**
 * Fuzzing the native protocol's decoders: peer JSON and its depth guard, command envelopes,
 * command params and stream positions. No input makes them throw; what they accept encodes
 * back to what was sent.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { COMMAND_SCHEMAS, decodeCommand, encodeError, validateParams } from '../../../src/protocol/frames.js';
import { RawJson, resultJson } from '../../../src/fronts/native/commands.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH, parsePeerJson } from '../../../src/protocol/json.js';
import { formatPosition, formatPositionList, parsePosition, parsePositionList } from '../../../src/protocol/position.js';
import { HeraldError } from '../../../src/core/errors.js';
import { parseBody, parseJson } from '../../../src/transports/http.js';
import { awkwardJson, fuzzParams, mangledObject, mutated } from '../../helpers/fuzz.js';

const COMMANDS = [
  '{"id":1,"cmd":"connect","token":"abc","version":1}',
  '{"id":2,"cmd":"subscribe","channel":"news","since":"e1:3","last":2}',
  '{"id":3,"cmd":"publish","channel":"chat","data":{"text":"hi","n":[1,2,{"a":null}]}}',
  '{"id":4,"cmd":"history","channel":"news","limit":10,"reverse":true}',
  '{"cmd":"ping"}',
  '{"id":5,"cmd":"im.send","to":"bob","clientId":"c1","data":"\\u00e9\\ud83d\\ude00"}',
];

/** Depth of a parsed JSON value (arrays and objects count; scalars are 0). Iterative. */
function depthOf(value: unknown): number {
  let max = 0;
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    max = Math.max(max, d + 1);
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

void describe('fuzz: peer JSON', () => {
  void test('parsePeerJson never throws, and accepts exactly the JSON that nests at most MAX_JSON_DEPTH deep', () => {
    fc.assert(
      fc.property(mutated(COMMANDS), (text) => {
        const r = parsePeerJson(text);
        let parsed: { value: unknown } | undefined;
        try {
          parsed = { value: JSON.parse(text) };
        } catch {
          parsed = undefined;
        }
        if (!parsed) return assert.deepEqual(r, { ok: false, reason: 'syntax' });
        if (depthOf(parsed.value) > MAX_JSON_DEPTH) return assert.deepEqual(r, { ok: false, reason: 'depth' });
        assert.equal(r.ok, true);
        // What is accepted can always be serialized again.
        JSON.stringify(r.ok && r.value);
      }),
      fuzzParams(2000),
    );
  });

  void test('the depth guard agrees with the real depth of any JSON value, strings full of brackets and escapes included', () => {
    const deepish = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.string({ unit: fc.constantFrom('[', ']', '{', '}', '"', '\\', 'a') }),
        fc.array(tie('node'), { maxLength: 2 }),
        fc.dictionary(fc.string({ unit: fc.constantFrom('[', '{', '"', '\\', 'k') }), tie('node'), { maxKeys: 2 }),
      ),
    })).node;
    fc.assert(
      fc.property(deepish, fc.integer({ min: 0, max: 8 }), (value, max) => {
        const text = JSON.stringify(value);
        assert.equal(jsonDepthExceeds(text, max), depthOf(value) > max);
      }),
      fuzzParams(2000),
    );
  });

  void test('parseJson of any body bytes gives a value or a documented 400', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 256 }),
          mutated(COMMANDS).map((s) => Buffer.from(s)),
        ),
        (bytes) => {
          try {
            parseJson(Buffer.from(bytes));
          } catch (e) {
            assert.ok(e instanceof HeraldError, String(e));
            assert.ok(['HERALD_ERR_MALFORMED_JSON', 'HERALD_ERR_JSON_TOO_DEEP'].includes(e.code), e.code);
            assert.equal(e.status, 400);
          }
        },
      ),
      fuzzParams(1000),
    );
  });
});

void describe('fuzz: command envelopes and params', () => {
  void test('decodeCommand never throws; an accepted envelope has a valid id and cmd', () => {
    fc.assert(
      fc.property(mutated(COMMANDS), (text) => {
        const r = decodeCommand(text);
        if ('kind' in r) {
          assert.ok(['json', 'shape', 'depth'].includes(r.kind));
          assert.equal(typeof r.message, 'string');
          // The reply to a failure carries the id back, so it must be one we can encode.
          if (r.id !== undefined) assert.ok(Number.isSafeInteger(r.id) && r.id >= 0);
          return;
        }
        assert.ok(r.id === undefined || (Number.isSafeInteger(r.id) && r.id >= 0));
        assert.ok(r.cmd.length >= 1 && r.cmd.length <= 64);
        assert.equal(Object.hasOwn(r.params, 'id') || Object.hasOwn(r.params, 'cmd'), false);
      }),
      fuzzParams(2000),
    );
  });

  void test('every command schema validates mangled params without throwing, and what passes is well typed', () => {
    const samples: Record<string, Record<string, unknown>> = {
      connect: { token: 'abc', user: 'alice', version: 1 },
      subscribe: { channel: 'news', since: 'e:1', last: 3 },
      unsubscribe: { channel: 'news' },
      publish: { channel: 'news', data: { a: 1 } },
      history: { channel: 'news', since: 'e:1', limit: 5, reverse: false },
      ping: {},
      refresh: { token: 'abc' },
    };
    const names = Object.keys(COMMAND_SCHEMAS) as Array<keyof typeof COMMAND_SCHEMAS>;
    fc.assert(
      fc.property(
        fc.constantFrom(...names).chain((name) => fc.tuple(fc.constant(name), mangledObject(samples[name]!))),
        ([name, params]) => {
          const r = validateParams(COMMAND_SCHEMAS[name] as never, params);
          if (!r.ok) return assert.ok(r.message.length > 0);
          const v = r.value as Record<string, unknown>;
          for (const key of Object.keys(v)) assert.ok(key in samples[name]!, `unknown key ${key} passed ${name}`);
          if ('channel' in v) assert.equal(typeof v.channel, 'string');
          if ('token' in v && v.token !== undefined) assert.equal(typeof v.token, 'string');
        },
      ),
      fuzzParams(2000),
    );
  });

  void test('parseBody turns any schema failure into a 400 naming the problem', () => {
    fc.assert(
      fc.property(awkwardJson, (value) => {
        try {
          parseBody(COMMAND_SCHEMAS.history, value);
        } catch (e) {
          assert.ok(e instanceof HeraldError && e.code === 'HERALD_ERR_BAD_REQUEST', String(e));
          assert.ok(e.message.length > 0);
        }
      }),
      fuzzParams(1000),
    );
  });

  void test('replies echo any accepted id and encode any result as JSON that decodes to it', () => {
    fc.assert(
      fc.property(fc.option(fc.nat(), { nil: undefined }), fc.jsonValue(), (id, result) => {
        const back = JSON.parse(resultJson(id, result)) as { id?: number; result: unknown };
        assert.equal(back.id, id);
        assert.deepEqual(back.result, JSON.parse(JSON.stringify(result ?? {})));
        const raw = JSON.parse(resultJson(id, new RawJson(JSON.stringify(result)))) as { id?: number; result: unknown };
        assert.deepEqual(raw, { ...(id === undefined ? {} : { id }), result: JSON.parse(JSON.stringify(result)) });
        const err = JSON.parse(encodeError(id, { code: 107, name: 'HERALD_ERR_BAD_REQUEST', message: JSON.stringify(result), temporary: false })) as {
          id?: number;
        };
        assert.equal(err.id, id);
      }),
      fuzzParams(1000),
    );
  });
});

void describe('fuzz: stream positions', () => {
  const epoch = fc.stringMatching(/^[0-9A-Za-z_-]{1,32}$/);
  const position = fc.record({ epoch, offset: fc.integer({ min: 0, max: 999_999_999_999_999 }) });

  void test('a formatted position parses back to itself', () => {
    fc.assert(
      fc.property(fc.array(fc.option(position, { nil: undefined }), { minLength: 1, maxLength: 5 }), (list) => {
        const plain = list.map((p) => (p ? { ...p } : undefined));
        for (const p of plain) if (p) assert.deepEqual(parsePosition(formatPosition(p)), p);
        assert.deepEqual(parsePositionList(formatPositionList(plain), plain.length), plain);
      }),
      fuzzParams(1000),
    );
  });

  void test('parsePosition and parsePositionList never throw, and only return positions they could have formatted', () => {
    fc.assert(
      fc.property(mutated(['abc:12', 'e1:0', 'x_-Y:999999999999999', 'a:1,b:2,', ',,']), fc.integer({ min: 0, max: 4 }), (text, count) => {
        const p = parsePosition(text);
        if (p) assert.equal(formatPosition(p), text.replace(/:0+(?=\d)/, ':'));
        const list = parsePositionList(text, count);
        if (list) for (const q of list) if (q) assert.ok(Number.isSafeInteger(q.offset) && q.offset >= 0);
      }),
      fuzzParams(2000),
    );
  });
});
