/**
 * Malformed STOMP input over a plain `ws` client (raw frames a real STOMP client never sends):
 * every case gets an ERROR frame and a close, and the server keeps serving everyone else.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { chan, startServer } from '../helpers/server.js';
import { frame, RawStomp } from '../helpers/stomp.js';

const MAX_FRAME = 1024;

void describe('STOMP malformed input', () => {
  let server: HeraldServer;
  before(async () => {
    server = await startServer({ dev: true, stomp: { maxFrameBytes: MAX_FRAME } });
  });
  after(() => server.close());

  /** Connect, send `data` as one WebSocket message, expect ERROR (message matching `pattern`) then close. */
  async function expectError(data: string | Buffer, pattern: RegExp, connect = true): Promise<{ headers: Record<string, string>; body: string; code: number }> {
    const raw = connect ? (await RawStomp.connected(server, { login: 'bad' })).raw : await RawStomp.open(server);
    raw.send(data);
    const f = await raw.next();
    assert.equal(f.command, 'ERROR', `expected ERROR, got ${f.command}`);
    assert.match(`${f.headers.message} ${f.body}`, pattern);
    const { code } = await raw.closed;
    return { headers: f.headers, body: f.body, code };
  }

  void test('unknown command', async () => {
    const { code } = await expectError(frame('HELLO', { a: 'b' }), /Unknown command: HELLO/);
    assert.equal(code, 3501);
  });

  void test('undefined escape sequence in a header', async () => {
    await expectError(frame('SEND', { destination: '/topic/a\\tb' }, 'x'), /Invalid escape/);
  });

  void test('missing NUL terminator', async () => {
    await expectError('SEND\ndestination:/topic/a\n\nno terminator', /missing NUL/);
  });

  void test('missing blank line after the headers', async () => {
    await expectError('SEND\ndestination:/topic/a\n\0', /Incomplete frame/);
  });

  void test('frame larger than stomp.maxFrameBytes', async () => {
    await expectError(frame('SEND', { destination: `/queue/${chan('big')}` }, 'x'.repeat(MAX_FRAME * 2)), /larger than 1024/);
  });

  void test('a WebSocket message beyond four frames\u2019 worth is closed by the transport (1009)', async () => {
    const { raw } = await RawStomp.connected(server, { login: 'huge' });
    raw.send(frame('SEND', { destination: '/queue/huge' }, 'x'.repeat(MAX_FRAME * 5)));
    assert.equal((await raw.closed).code, 1009);
  });

  void test('content-length that does not match the body', async () => {
    await expectError(`SEND\ndestination:/topic/a\ncontent-length:3\n\nabcdef\0`, /content-length mismatch/);
    await expectError(`SEND\ndestination:/topic/a\ncontent-length:x\n\nabc\0`, /Invalid content-length/);
  });

  void test('binary garbage', async () => {
    await expectError(Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x0a, 0x00]), /Unknown command/);
  });

  void test('frames before CONNECT', async () => {
    const { code } = await expectError(frame('SUBSCRIBE', { id: '0', destination: '/topic/a' }), /CONNECT/, false);
    assert.equal(code, 3501);
  });

  void test('CONNECT with no common version gets ERROR with the supported versions', async () => {
    const { headers } = await expectError(frame('CONNECT', { 'accept-version': '2.0' }), /Unsupported STOMP version/, false);
    assert.equal(headers.version, '1.2,1.1,1.0');
  });

  void test('bad heart-beat header, SUBSCRIBE without id, unknown destination, bad ack mode', async () => {
    await expectError(frame('CONNECT', { 'accept-version': '1.2', 'heart-beat': 'soon' }), /heart-beat/, false);
    await expectError(frame('SUBSCRIBE', { destination: '/topic/a' }), /id header/);
    await expectError(frame('SUBSCRIBE', { id: '1', destination: '/nowhere/a' }), /Unknown destination/);
    await expectError(frame('SUBSCRIBE', { id: '1', destination: '/topic/a', ack: 'sometimes' }), /ack must be/);
    await expectError(frame('SEND', { destination: '/topic/bad*name' }, 'x'), /Invalid destination name/);
  });

  void test('the ERROR carries receipt-id of the failing frame; frames before the bad one were handled', async () => {
    const { raw } = await RawStomp.connected(server, { login: 'mixed' });
    raw.send(
      frame('SUBSCRIBE', { id: '0', destination: `/topic/${chan('ok')}`, receipt: 'good' }) +
        frame('SUBSCRIBE', { id: '0', destination: '/topic/x', receipt: 'dup' }),
    );
    const receipt = await raw.next();
    assert.deepEqual([receipt.command, receipt.headers['receipt-id']], ['RECEIPT', 'good']);
    const err = await raw.next();
    assert.equal(err.command, 'ERROR');
    assert.equal(err.headers['receipt-id'], 'dup');
    assert.match(err.headers.message!, /already in use/);
    await raw.closed;
  });

  void test('after all that, the server still serves other STOMP clients', async () => {
    const ch = chan('alive');
    const { raw } = await RawStomp.connected(server, { login: 'good' });
    raw.send(frame('SUBSCRIBE', { id: 's', destination: `/topic/${ch}`, receipt: 'r' }));
    assert.equal((await raw.next()).command, 'RECEIPT');
    const res = await fetch(`${server.url()}/api/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ channel: ch, data: 'still here' }),
    });
    assert.equal(res.status, 200);
    const m = await raw.next();
    assert.equal(m.command, 'MESSAGE');
    assert.equal(m.body, '"still here"');
    assert.equal(server.stomp?.sessionCount, 1);
    await raw.close();
  });
});
