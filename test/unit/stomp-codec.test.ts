/**
 * STOMP 1.2 frame codec: commands, EOLs, header escaping (not in CONNECT), repeated headers,
 * content-length, NUL terminators, several frames and heart-beats per message, limits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeFrame, escapeHeader, parseFrames, type ParseLimits, unescapeHeader } from '../../src/fronts/stomp/codec.js';

const LIMITS: ParseLimits = { maxFrameBytes: 1024, maxHeaders: 8 };
const parse = (text: string | Buffer, limits = LIMITS) => parseFrames(Buffer.isBuffer(text) ? text : Buffer.from(text, 'utf8'), limits);
const one = (text: string | Buffer) => {
  const r = parse(text);
  assert.equal(r.error, undefined);
  assert.equal(r.frames.length, 1);
  return r.frames[0]!;
};

void describe('STOMP codec: parsing', () => {
  void test('parses a frame with headers and a NUL-terminated body', () => {
    const f = one('SEND\ndestination:/topic/a\ncontent-type:text/plain\n\nhello\0');
    assert.equal(f.command, 'SEND');
    assert.equal(f.headers.get('destination'), '/topic/a');
    assert.equal(f.headers.get('content-type'), 'text/plain');
    assert.equal(f.body.toString(), 'hello');
  });

  void test('accepts CRLF line endings and trailing EOLs after the NUL', () => {
    const f = one('SUBSCRIBE\r\nid:0\r\ndestination:/topic/x\r\n\r\n\0\r\n\n');
    assert.equal(f.headers.get('id'), '0');
    assert.equal(f.headers.get('destination'), '/topic/x');
    assert.equal(f.body.length, 0);
  });

  void test('counts heart-beat EOLs and decodes several frames in one message', () => {
    const r = parse('\n\r\nSEND\ndestination:/queue/a\n\none\0SEND\ndestination:/queue/b\n\ntwo\0\n');
    assert.equal(r.error, undefined);
    assert.equal(r.heartbeats, 3);
    assert.deepEqual(
      r.frames.map((f) => [f.headers.get('destination'), f.body.toString()]),
      [
        ['/queue/a', 'one'],
        ['/queue/b', 'two'],
      ],
    );
    assert.deepEqual(parse('\n'), { frames: [], heartbeats: 1 });
  });

  void test('unescapes \\r \\n \\c \\\\ in header names and values', () => {
    const f = one('SEND\ndestination:/topic/a\nx\\cy:a\\nb\\rc\\cd\\\\e\n\n\0');
    assert.equal(f.headers.get('x:y'), 'a\nb\rc:d\\e');
  });

  void test('does not unescape CONNECT headers', () => {
    const f = one('CONNECT\naccept-version:1.2\npasscode:a\\cb\n\n\0');
    assert.equal(f.headers.get('passcode'), 'a\\cb');
  });

  void test('keeps the first of repeated headers; a colon in a value is kept', () => {
    const f = one('SEND\ndestination:/topic/a\ndestination:/topic/b\nfoo:a:b\n\n\0');
    assert.equal(f.headers.get('destination'), '/topic/a');
    assert.equal(f.headers.get('foo'), 'a:b');
  });

  void test('reads exactly content-length bytes, NULs included', () => {
    const body = Buffer.from([1, 0, 2, 0, 255]);
    const data = Buffer.concat([Buffer.from('SEND\ndestination:/queue/q\ncontent-length:5\n\n'), body, Buffer.from([0])]);
    const f = one(data);
    assert.deepEqual([...f.body], [...body]);
  });

  void test('keeps UTF-8 in headers and bodies', () => {
    const f = one('SEND\ndestination:/topic/caf\u00e9\n\n\u00e9t\u00e9 \u2603\0');
    assert.equal(f.headers.get('destination'), '/topic/caf\u00e9');
    assert.equal(f.body.toString('utf8'), '\u00e9t\u00e9 \u2603');
  });
});

void describe('STOMP codec: malformed input', () => {
  const error = (text: string | Buffer, limits = LIMITS) => {
    const r = parse(text, limits);
    assert.ok(r.error, `expected an error for ${JSON.stringify(text.toString().slice(0, 60))}`);
    return r;
  };

  void test('rejects unknown and server-only commands', () => {
    assert.match(error('HELLO\n\n\0').error!, /Unknown command/);
    assert.match(error('MESSAGE\n\n\0').error!, /Unknown command/);
    assert.match(error('send\n\n\0').error!, /Unknown command/);
  });

  void test('rejects undefined escape sequences', () => {
    assert.match(error('SEND\ndestination:/topic/a\\t\n\n\0').error!, /escape/);
    assert.match(error('SEND\ndestination:/topic/a\\\n\n\0').error!, /escape/);
  });

  void test('rejects a frame without its NUL or without the blank line', () => {
    assert.match(error('SEND\ndestination:/topic/a\n\nbody').error!, /NUL/);
    assert.match(error('SEND\ndestination:/topic/a\n\0').error!, /Incomplete/);
    assert.match(error('SEND').error!, /Incomplete/);
  });

  void test('rejects header lines without a colon or with an empty name', () => {
    assert.match(error('SEND\nnocolon\n\n\0').error!, /Malformed header/);
    assert.match(error('SEND\n:value\n\n\0').error!, /Malformed header/);
  });

  void test('rejects content-length that is invalid or does not match the body', () => {
    assert.match(error('SEND\ncontent-length:abc\n\nx\0').error!, /content-length/);
    assert.match(error('SEND\ncontent-length:2\n\nabc\0').error!, /content-length mismatch/);
    assert.match(error('SEND\ncontent-length:10\n\nabc\0').error!, /content-length/);
  });

  void test('rejects frames over maxFrameBytes and more headers than maxHeaders', () => {
    const big = `SEND\ndestination:/queue/a\n\n${'x'.repeat(2000)}\0`;
    assert.match(error(big).error!, /larger than 1024/);
    assert.match(error(`SEND\ncontent-length:2000\n\n${'x'.repeat(2000)}\0`).error!, /larger than 1024/);
    const headers = Array.from({ length: 9 }, (_, i) => `h${i}:v\n`).join('');
    assert.match(error(`SEND\n${headers}\n\0`).error!, /More than 8 headers/);
  });

  void test('frames before a malformed one are returned with the error', () => {
    const r = error('SEND\ndestination:/queue/a\n\nok\0BOGUS\n\n\0');
    assert.equal(r.frames.length, 1);
    assert.equal(r.frames[0]!.body.toString(), 'ok');
  });
});

void describe('STOMP codec: robustness', () => {
  void test('never throws on mutated and truncated frames (seeded fuzz)', () => {
    let seed = 42;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const seeds = [
      encodeFrame(
        'SEND',
        [
          ['destination', '/topic/a:b'],
          ['receipt', 'r\n1'],
        ],
        'hello',
      ),
      Buffer.from('CONNECT\naccept-version:1.2\nheart-beat:10,10\n\n\0\n'),
      Buffer.from('SEND\ncontent-length:3\n\na\0b\0SUBSCRIBE\nid:1\ndestination:/q\n\n\0'),
    ];
    const alphabet = [0x00, 0x0a, 0x0d, 0x3a, 0x5c, 0x63, 0x6e, 0x72, 0x41, 0xff];
    let errors = 0;
    for (let k = 0; k < 5_000; k++) {
      const data = Buffer.from(seeds[rand(seeds.length)]!);
      for (let m = rand(4) + 1; m > 0; m--) data[rand(data.length)] = alphabet[rand(alphabet.length)]!;
      const cut = rand(3) === 0 ? data.subarray(0, rand(data.length + 1)) : data;
      const r = parseFrames(cut, { maxFrameBytes: 64, maxHeaders: 3 });
      if (r.error !== undefined) errors++;
      for (const f of r.frames) assert.ok(f.command.length > 0);
    }
    assert.ok(errors > 1_000, 'most mutations are malformed');
  });
});

void describe('STOMP codec: encoding', () => {
  void test('escapes headers and adds content-length; the parser reads back the same frame', () => {
    const data = encodeFrame(
      'SEND',
      [
        ['destination', '/topic/a:b'],
        ['x', 'line\nbreak\\'],
      ],
      'body\0with nul',
    );
    assert.match(data.toString(), /^SEND\ndestination:\/topic\/a\\cb\nx:line\\nbreak\\\\\ncontent-length:13\n\n/);
    const f = one(data);
    assert.equal(f.headers.get('destination'), '/topic/a:b');
    assert.equal(f.headers.get('x'), 'line\nbreak\\');
    assert.equal(f.body.toString(), 'body\0with nul');
  });

  void test('CONNECTED headers are not escaped; an empty body has no content-length', () => {
    assert.equal(
      encodeFrame('CONNECTED', [
        ['version', '1.2'],
        ['server', 'a:b'],
      ]).toString(),
      'CONNECTED\nversion:1.2\nserver:a:b\n\n\0',
    );
  });

  void test('escapeHeader and unescapeHeader are inverse', () => {
    for (const s of ['', 'plain', 'a:b', 'c\\d', 'e\nf\rg', '\\\\::\n\n']) assert.equal(unescapeHeader(escapeHeader(s)), s);
  });
});
