/**
 * Small parts of the XMPP front: JIDs (with XEP-0106 escaping of `@` in user ids), SASL PLAIN
 * decoding, and the XEP-0198 counters (acks mapped onto inbox seqs, 2^32 wrap, too-high h) and
 * their record for a resumption on another node.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { bareJid, fullJid, parseJid } from '../../src/fronts/xmpp/jid.js';
import { decodePlain } from '../../src/fronts/xmpp/sasl.js';
import { decodeSm, encodeSm, type SmData, settledBy } from '../../src/fronts/xmpp/resumption.js';
import { HandledCountTooHigh, parseH, StreamManagement } from '../../src/fronts/xmpp/stream-management.js';

const b64 = (s: string): string => Buffer.from(s).toString('base64');

void describe('XMPP JIDs', () => {
  void test('parses bare, full and domain JIDs; the domain is case-folded, the user id is not', () => {
    assert.deepEqual(parseJid('Alice@LocalHost/phone/x'), { user: 'Alice', domain: 'localhost', resource: 'phone/x' });
    assert.deepEqual(parseJid('localhost'), { user: '', domain: 'localhost', resource: '' });
    assert.deepEqual(parseJid('bob@example.com'), { user: 'bob', domain: 'example.com', resource: '' });
  });

  void test('a user id with @ travels escaped as \\40 and comes back', () => {
    assert.equal(bareJid('a@b.com', 'localhost'), 'a\\40b.com@localhost');
    assert.equal(fullJid('a@b.com', 'localhost', 'r'), 'a\\40b.com@localhost/r');
    assert.equal(parseJid('a\\40b.com@localhost/r')?.user, 'a@b.com');
  });

  void test('refuses malformed JIDs and local parts that are no Herald user id', () => {
    for (const bad of [
      '',
      '@localhost',
      'a@',
      'a@localhost/',
      'a b@localhost',
      'a@local host',
      'x'.repeat(200) + '@localhost',
      'a\\20b@localhost',
      'a@<script>',
    ]) {
      assert.equal(parseJid(bad), undefined, bad);
    }
  });
});

void describe('SASL PLAIN', () => {
  void test("decodes authzid NUL authcid NUL password; an authzid must be the user's own", () => {
    assert.deepEqual(decodePlain(b64('\0alice\0tok'), 'localhost'), { user: 'alice', password: 'tok' });
    assert.deepEqual(decodePlain(b64('alice@localhost\0alice\0tok'), 'localhost'), { user: 'alice', password: 'tok' });
    assert.equal((decodePlain(b64('mallory@localhost\0alice\0tok'), 'localhost') as { failure: string }).failure, 'invalid-authzid');
  });

  void test('refuses empty, badly encoded and malformed responses', () => {
    assert.equal((decodePlain('', 'localhost') as { failure: string }).failure, 'malformed-request');
    assert.equal((decodePlain('=', 'localhost') as { failure: string }).failure, 'malformed-request');
    assert.equal((decodePlain('!!!!', 'localhost') as { failure: string }).failure, 'incorrect-encoding');
    assert.equal((decodePlain('abc', 'localhost') as { failure: string }).failure, 'incorrect-encoding');
    assert.equal((decodePlain(b64('alice\0tok'), 'localhost') as { failure: string }).failure, 'malformed-request');
  });
});

void describe('XEP-0198 counters', () => {
  void test('h acknowledges stanzas in order and settles the highest inbox seq among them', () => {
    const sm = new StreamManagement('id', 1 << 20);
    sm.sent('<presence/>');
    sm.sent('<message>1</message>', 7);
    assert.equal(sm.seqOnly(8), undefined, 'an entry without a stanza rides on the last one');
    sm.sent('<message>2</message>', 9);
    assert.equal(sm.outbound, 3);
    assert.equal(sm.acknowledge(1), 0);
    assert.equal(sm.acknowledge(2), 8);
    assert.deepEqual(sm.pending(), ['<message>2</message>']);
    assert.equal(sm.acknowledge(3), 9);
    assert.equal(sm.seqOnly(10), 10, 'nothing waits: settled at once');
    assert.throws(() => sm.acknowledge(5), HandledCountTooHigh);
  });

  void test('h is an unsigned 32-bit integer counted modulo 2^32; the handled count goes up per stanza', () => {
    const sm = new StreamManagement(undefined, 1 << 20);
    for (let i = 0; i < 3; i++) sm.sent('<iq/>');
    assert.equal(sm.acknowledge(3), 0);
    // 2^32 - 1 is 4 behind 3 modulo 2^32, i.e. 2^32 - 4 stanzas ahead: more than were sent.
    assert.throws(() => sm.acknowledge(2 ** 32 - 1), HandledCountTooHigh);
    assert.equal(parseH('4294967295'), 4294967295);
    assert.equal(parseH('4294967296'), undefined);
    assert.equal(parseH('-1'), undefined);
    assert.equal(parseH('1e3'), undefined);
    for (let i = 0; i < 5; i++) sm.handled();
    assert.equal(sm.inbound, 5);
  });

  void test('the unacknowledged queue is bounded in bytes', () => {
    const sm = new StreamManagement(undefined, 100);
    assert.equal(sm.sent('x'.repeat(60)), true);
    assert.equal(sm.sent('y'.repeat(60)), false);
  });
});

void describe('XEP-0198 state recorded for another node', () => {
  /** What a session records (resumption.ts) from its counters; `settled`: the highest seq its acks settled. */
  const record = (sm: StreamManagement, settled: number): SmData => ({
    resource: 'r',
    in: sm.inbound,
    out: sm.outbound,
    acked: sm.acked,
    sent: sm.sentSeqs(),
    settled,
    from: 0,
    carbons: false,
    rooms: [],
  });

  void test("the record settles for any h what the session's own counters settle, across the 2^32 wrap", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 32 - 1 }),
        fc.array(fc.oneof(fc.constant('stanza'), fc.constant('entry'), fc.constant('bare'), fc.constant('ack')), { maxLength: 40 }),
        fc.nat(),
        (start, ops, pick) => {
          const sm = new StreamManagement('id', 1 << 20, { inbound: 0, acked: start });
          let seq = 0;
          let settled = 0;
          let out = sm.outbound;
          for (const op of ops) {
            if (op === 'stanza') sm.sent('<iq/>');
            else if (op === 'entry') sm.sent('<message/>', ++seq);
            else if (op === 'bare') settled = Math.max(settled, sm.seqOnly(++seq) ?? 0);
            else if (sm.unacked > 0) settled = Math.max(settled, sm.acknowledge((sm.acked + 1) % 2 ** 32));
            out = sm.outbound;
          }
          const rec = decodeSm(encodeSm(record(sm, settled)))!;
          const h = (sm.acked + (pick % (sm.unacked + 1))) % 2 ** 32;
          assert.equal(settledBy(rec, h), Math.max(settled, sm.acknowledge(h)));
          assert.equal(settledBy(rec, (out + 1) % 2 ** 32), undefined, 'more than was sent');
        },
      ),
    );
  });

  void test('a malformed record is not read', () => {
    const good = { resource: 'r', in: 1, out: 2, acked: 1, sent: [[2, 5]], settled: 0, from: null, carbons: true, rooms: ['g:ab'] };
    assert.deepEqual(decodeSm(JSON.stringify(good)), good);
    for (const bad of [
      '',
      '{',
      'null',
      JSON.stringify({ ...good, in: -1 }),
      JSON.stringify({ ...good, out: 2 ** 32 }),
      JSON.stringify({ ...good, resource: '' }),
    ])
      assert.equal(decodeSm(bad), undefined, bad);
  });
});
