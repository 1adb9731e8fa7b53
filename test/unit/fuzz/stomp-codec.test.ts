/**
 * Fuzzing the STOMP 1.2 codec: any bytes parse without throwing (frames or an error message),
 * frame limits hold, and every frame the encoder writes parses back to itself.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { CLIENT_COMMANDS, encodeFrame, escapeHeader, parseFrames, unescapeHeader } from '../../../src/fronts/stomp/codec.js';
import { fuzzParams, mutated } from '../../helpers/fuzz.js';

const LIMITS = { maxFrameBytes: 512, maxHeaders: 8 };
const FRAMES = [
  'CONNECT\naccept-version:1.2\nhost:localhost\nlogin:alice\npasscode:x\n\n\0',
  'SEND\ndestination:/topic/a\\cb\ncontent-type:text/plain\ncontent-length:5\n\nhello\0\n\n',
  'SUBSCRIBE\r\nid:0\r\ndestination:/queue/q\r\nack:client-individual\r\n\r\n\0',
  'ACK\nid:m-1\n\n\0\nDISCONNECT\nreceipt:77\n\n\0',
  '\n\r\n\n',
];

const headerText = fc.string({ unit: 'binary', maxLength: 24 });
const headerName = headerText.filter((n) => n.length > 0 && n !== 'content-length');

void describe('fuzz: STOMP codec', () => {
  void test('parseFrames never throws on mutated frames or random bytes, and respects its limits', () => {
    const input = fc.oneof(
      mutated(FRAMES).map((s) => Buffer.from(s, 'latin1')),
      fc.uint8Array({ maxLength: 700 }).map((a) => Buffer.from(a)),
    );
    fc.assert(
      fc.property(input, (data) => {
        const r = parseFrames(data, LIMITS);
        if (r.error !== undefined) {
          assert.equal(typeof r.error, 'string');
          assert.ok(r.error.length > 0 && r.error.length < 200, 'error messages stay short');
          assert.doesNotMatch(r.error, /[\x00-\x1f]/, 'error messages carry no control characters');
        }
        for (const f of r.frames) {
          assert.ok(CLIENT_COMMANDS.has(f.command));
          assert.ok(f.headers.size <= LIMITS.maxHeaders);
          assert.ok(f.body.length <= LIMITS.maxFrameBytes);
        }
      }),
      fuzzParams(3000),
    );
  });

  void test('an encoded frame parses back to the same command, headers and body', () => {
    const escaped = fc.constantFrom('SEND', 'SUBSCRIBE', 'UNSUBSCRIBE', 'ACK', 'NACK', 'BEGIN', 'COMMIT', 'ABORT', 'DISCONNECT');
    fc.assert(
      fc.property(
        escaped,
        fc.uniqueArray(fc.tuple(headerName, headerText), { maxLength: 6, selector: ([n]) => n }),
        fc.uint8Array({ maxLength: 200 }),
        (command, headers, body) => {
          const wire = encodeFrame(command, headers, Buffer.from(body));
          const r = parseFrames(Buffer.concat([wire, Buffer.from('\n')]), { maxFrameBytes: 1 << 20, maxHeaders: 16 });
          assert.equal(r.error, undefined, r.error);
          assert.equal(r.frames.length, 1);
          const f = r.frames[0]!;
          assert.equal(f.command, command);
          const expected = new Map(headers.map(([n, v]) => [n, v]));
          if (body.length > 0) expected.set('content-length', String(body.length));
          assert.deepEqual(f.headers, expected);
          assert.deepEqual([...f.body], [...body]);
        },
      ),
      fuzzParams(2000),
    );
  });

  void test('CONNECT headers are not escaped: values with colons and backslashes pass through', () => {
    const raw = fc.string({ unit: 'binary', maxLength: 24 }).filter((s) => !/[\r\n]/.test(s));
    fc.assert(
      fc.property(
        fc.uniqueArray(
          fc.tuple(
            raw.filter((n) => n.length > 0 && !n.includes(':') && n !== 'content-length'),
            raw,
          ),
          { maxLength: 6, selector: ([n]) => n },
        ),
        (headers) => {
          const r = parseFrames(encodeFrame('CONNECT', headers), { maxFrameBytes: 1 << 16, maxHeaders: 16 });
          assert.equal(r.error, undefined, r.error);
          assert.deepEqual(r.frames[0]!.headers, new Map(headers));
        },
      ),
      fuzzParams(1000),
    );
  });

  void test('unescapeHeader inverts escapeHeader and reports any other backslash sequence as a frame error', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        assert.equal(unescapeHeader(escapeHeader(s)), s);
        try {
          unescapeHeader(s);
        } catch (e) {
          assert.match(String((e as Error).message), /^Invalid escape sequence in header/);
        }
      }),
      fuzzParams(2000),
    );
  });
});
