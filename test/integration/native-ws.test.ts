/**
 * The native WebSocket protocol: connect and authentication, channel policy (tokens, publish,
 * join/leave), commands and their error replies.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { ErrorCode, type HeraldServer } from '../../src/index.js';
import { WsClient } from '../helpers/clients.js';
import { chan, publish, startServer, wsUrl } from '../helpers/server.js';
import { signToken } from '../helpers/tokens.js';
import { TEST_SECRET } from '../helpers/tokens.js';

describe('native WebSocket protocol', () => {
  let server: HeraldServer;
  let url: string;
  const clients: WsClient[] = [];
  const open = async (): Promise<WsClient> => {
    const c = await WsClient.open(url);
    clients.push(c);
    return c;
  };
  const connected = async (params: Record<string, unknown> = {}): Promise<WsClient> => {
    const c = await WsClient.connected(url, params);
    clients.push(c);
    return c;
  };

  before(async () => {
    server = await startServer({
      dev: true,
      // Bare names and tokens side by side, on purpose: the tests use both kinds of identity.
      devAllowUnsafe: true,
      auth: { hmacSecret: TEST_SECRET },
      namespaces: [
        { name: 'private', requireToken: true },
        { name: 'chat', allowPublish: true },
        { name: 'room', joinLeave: true },
      ],
    });
    url = wsUrl(server);
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
  });
  after(async () => {
    await server.close();
  });

  describe('connect', () => {
    test('connect without a token gives an anonymous session with the protocol version and ping interval', async () => {
      const c = await open();
      const r = await c.command('connect');
      assert.equal(r.error, undefined);
      assert.equal(r.result.version, 1);
      assert.equal(r.result.user, undefined);
      assert.equal(r.result.ping, 300);
      assert.equal(typeof r.result.client, 'string');
      assert.ok(r.result.client.length > 0);
    });

    test('connect with a valid HS256 token identifies the user from sub', async () => {
      const c = await open();
      const r = await c.command('connect', { token: await signToken('alice') });
      assert.equal(r.result.user, 'alice');
    });

    const badTokens: Array<[string, () => Promise<string>, number]> = [
      ['an expired token', () => signToken('alice', {}, { exp: Math.floor(Date.now() / 1000) - 60 }), ErrorCode.TOKEN_EXPIRED],
      ['a token with a wrong signature', () => signToken('alice', {}, { secret: 'another-secret-0123456789abcdef' }), ErrorCode.UNAUTHORIZED],
      ['a malformed token', async () => 'not-a-jwt', ErrorCode.UNAUTHORIZED],
    ];
    for (const [what, make, code] of badTokens) {
      test(`connect with ${what} gets error ${code} and close 3500`, async () => {
        const c = await open();
        const r = await c.command('connect', { token: await make() });
        assert.equal(r.error?.code, code);
        assert.equal((await c.closed).code, 3500);
      });
    }

    for (const [what, params] of [
      ['anonymous', async () => ({})],
      ['with a token', async () => ({ token: await signToken('alice') })],
    ] as const) {
      test(`commands pipelined right after connect (${what}) run once the connect completes`, async () => {
        const c = await open();
        const ch = chan();
        const replies = await Promise.all([c.command('connect', await params()), c.command('subscribe', { channel: ch }), c.command('ping')]);
        assert.deepEqual(
          replies.map((r) => r.error),
          [undefined, undefined, undefined],
        );
        assert.equal(replies[1]!.result.channel, ch);
      });
    }

    test('in development mode a bare user name is accepted as identity', async () => {
      const c = await open();
      const r = await c.command('connect', { user: 'bob' });
      assert.equal(r.result.user, 'bob');
    });

    test('commands before connect are refused with error 101', async () => {
      const c = await open();
      const r = await c.command('subscribe', { channel: 'x' });
      assert.equal(r.error?.code, ErrorCode.UNAUTHORIZED);
      assert.equal(r.error?.name, 'HERALD_ERR_NOT_CONNECTED');
    });

    test('a second connect is a bad request', async () => {
      const c = await connected();
      const r = await c.command('connect');
      assert.equal(r.error?.code, ErrorCode.BAD_REQUEST);
    });

    test('an unsupported protocol version is closed with 3504', async () => {
      const c = await open();
      c.send({ id: 1, cmd: 'connect', version: 2 });
      assert.equal((await c.closed).code, 3504);
    });
  });

  describe('channel policy', () => {
    test('a requireToken namespace refuses anonymous subscribers with 101 and accepts token holders', async () => {
      const ch = chan('private:p');
      const anon = await connected();
      assert.equal((await anon.command('subscribe', { channel: ch })).error?.code, ErrorCode.UNAUTHORIZED);
      const alice = await connected({ token: await signToken('alice') });
      assert.equal((await alice.command('subscribe', { channel: ch })).error, undefined);
    });

    test('a token channels claim grants matching channels (prefix patterns) and refuses others with 103', async () => {
      const c = await connected({ token: await signToken('alice', { channels: ['news:*', 'exact'] }) });
      assert.equal((await c.command('subscribe', { channel: 'news:sport' })).error, undefined);
      assert.equal((await c.command('subscribe', { channel: 'exact' })).error, undefined);
      assert.equal((await c.command('subscribe', { channel: 'other' })).error?.code, ErrorCode.PERMISSION_DENIED);
      assert.equal((await c.command('history', { channel: 'other' })).error?.code, ErrorCode.PERMISSION_DENIED);
    });

    test('clients may not publish by default (103); an allowPublish namespace delivers with publisher info', async () => {
      const ch = chan('chat:c');
      const reader = await connected();
      await reader.ok('subscribe', { channel: ch });
      const writer = await connected({ token: await signToken('carol') });
      const denied = await writer.command('publish', { channel: chan('plain'), data: 1 });
      assert.equal(denied.error?.code, ErrorCode.PERMISSION_DENIED);
      const r = await writer.ok('publish', { channel: ch, data: { text: 'hi' } });
      assert.equal(r.offset, 1);
      assert.equal(typeof r.epoch, 'string');
      const pub = await reader.nextPub(ch);
      assert.deepEqual(pub.data, { text: 'hi' });
      assert.equal(pub.info?.user, 'carol');
      assert.equal(typeof pub.info?.client, 'string');
    });

    test('a joinLeave namespace sends join on subscribe and leave on unsubscribe and disconnect', async () => {
      const ch = chan('room:r');
      const watcher = await connected({ user: 'watcher' });
      await watcher.ok('subscribe', { channel: ch });
      await watcher.pushes.take((f) => f.type === 'join' && f.user === 'watcher');
      const dave = await connected({ user: 'dave' });
      await dave.ok('subscribe', { channel: ch });
      const join = await watcher.pushes.take((f) => f.type === 'join');
      assert.deepEqual({ channel: join.channel, user: join.user }, { channel: ch, user: 'dave' });
      await dave.ok('unsubscribe', { channel: ch });
      const leave = await watcher.pushes.take((f) => f.type === 'leave');
      assert.equal(leave.user, 'dave');
      await dave.ok('subscribe', { channel: ch });
      await watcher.pushes.take((f) => f.type === 'join' && f.user === 'dave');
      dave.terminate();
      assert.equal((await watcher.pushes.take((f) => f.type === 'leave')).user, 'dave');
    });

    test('a channel without joinLeave sends no join events', async () => {
      const ch = chan('quiet');
      const watcher = await connected({ user: 'w' });
      await watcher.ok('subscribe', { channel: ch });
      const other = await connected({ user: 'o' });
      await other.ok('subscribe', { channel: ch });
      await publish(server, ch, 'marker');
      await watcher.nextPub(ch);
      assert.equal(watcher.pushes.items.filter((f) => f.type === 'join').length, 0);
    });
  });

  describe('commands', () => {
    test('subscribe returns the position and history; unsubscribe stops delivery', async () => {
      const ch = chan();
      const [p] = await publish(server, ch, 'one');
      const c = await connected();
      const r = await c.ok('subscribe', { channel: ch, last: 5 });
      assert.deepEqual(
        { channel: r.channel, epoch: r.epoch, offset: r.offset, recovered: r.recovered },
        { channel: ch, epoch: p!.epoch, offset: 1, recovered: true },
      );
      assert.deepEqual(
        r.publications.map((x: { data: unknown }) => x.data),
        ['one'],
      );
      await c.ok('unsubscribe', { channel: ch });
      await publish(server, ch, 'two');
      const other = chan();
      await c.ok('subscribe', { channel: other });
      await publish(server, other, 'marker');
      assert.equal((await c.nextPub()).channel, other, 'nothing arrives from the unsubscribed channel');
    });

    test('history reads forward from a position, with a limit, and newest first', async () => {
      const ch = chan();
      for (let i = 1; i <= 5; i++) await publish(server, ch, i);
      const c = await connected();
      const all = await c.ok('history', { channel: ch });
      assert.deepEqual(
        all.publications.map((x: { data: number }) => x.data),
        [1, 2, 3, 4, 5],
      );
      assert.equal(all.offset, 5);
      const since = await c.ok('history', { channel: ch, since: `${all.epoch}:2`, limit: 2 });
      assert.deepEqual(
        since.publications.map((x: { data: number }) => x.data),
        [3, 4],
      );
      const rev = await c.ok('history', { channel: ch, limit: 2, reverse: true });
      assert.deepEqual(
        rev.publications.map((x: { data: number }) => x.data),
        [5, 4],
      );
    });

    test('commands sent without an id get replies without an id, subscribe included', async () => {
      const c = await connected();
      c.send({ cmd: 'ping' });
      const ping = await c.stray.take();
      assert.deepEqual(ping, { result: {} });
      c.send({ cmd: 'subscribe', channel: chan() });
      const sub = await c.stray.take();
      assert.equal('id' in sub, false);
      assert.equal(sub.result.recovered, true);
      c.send({ cmd: 'teleport' });
      const err = await c.stray.take();
      assert.equal('id' in err, false);
      assert.equal(err.error?.code, ErrorCode.METHOD_NOT_FOUND);
    });

    test('ping replies with an empty result', async () => {
      const c = await connected();
      assert.deepEqual(await c.ok('ping'), {});
    });

    test('raw publications from the API carry their content type; binary ones are base64', async () => {
      const ch = chan();
      const c = await connected();
      await c.ok('subscribe', { channel: ch });
      await fetch(`${server.url()}/api/publish?channel=${ch}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
      const text = await c.nextPub(ch);
      assert.deepEqual({ data: text.data, contentType: text.contentType }, { data: 'hello', contentType: 'text/plain' });
      await fetch(`${server.url()}/api/publish?channel=${ch}`, {
        method: 'POST',
        headers: { 'content-type': 'application/octet-stream' },
        body: Buffer.from([0, 1, 255]),
      });
      const bin = await c.nextPub(ch);
      assert.equal(bin.encoding, 'base64');
      assert.deepEqual(Buffer.from(bin.data as string, 'base64'), Buffer.from([0, 1, 255]));
    });

    test('a publication labelled application/json whose body is not JSON (e.g. from another front) arrives as a string, frames stay valid', async () => {
      const ch = chan();
      const c = await connected();
      await c.ok('subscribe', { channel: ch });
      await server.core.publish(ch, { payload: Buffer.from('not json {'), contentType: 'application/json' }, 'nchan');
      const pub = await c.nextPub(ch);
      assert.deepEqual({ data: pub.data, contentType: pub.contentType }, { data: 'not json {', contentType: 'application/json' });
      const h = await c.ok('history', { channel: ch });
      assert.equal(h.publications[0].data, 'not json {');
    });

    test('malformed JSON closes the connection with 3501', async () => {
      const c = await connected();
      c.send('{"id":1,"cmd":');
      assert.equal((await c.closed).code, 3501);
    });

    test('a frame that is not a command object closes with 3501', async () => {
      for (const frame of ['[1,2]', '{"id":-1,"cmd":"ping"}', '{"id":1}']) {
        const c = await connected();
        c.send(frame);
        assert.equal((await c.closed).code, 3501, frame);
      }
    });

    test('an unknown command gets error 104 and the connection stays usable', async () => {
      const c = await connected();
      const r = await c.command('teleport');
      assert.equal(r.error?.code, ErrorCode.METHOD_NOT_FOUND);
      assert.equal(r.error?.temporary, false);
      assert.deepEqual(await c.ok('ping'), {});
    });

    test('bad params get error 107 naming the problem', async () => {
      const c = await connected();
      const wrongType = await c.command('subscribe', { channel: 5 });
      assert.equal(wrongType.error?.code, ErrorCode.BAD_REQUEST);
      assert.match(wrongType.error!.message, /channel/);
      const extra = await c.command('subscribe', { channel: 'x', colour: 'red' });
      assert.equal(extra.error?.code, ErrorCode.BAD_REQUEST);
      const missing = await c.command('unsubscribe');
      assert.equal(missing.error?.code, ErrorCode.BAD_REQUEST);
    });

    test('an invalid position gets error 114', async () => {
      const c = await connected();
      for (const since of ['nonsense', 'abc:', ':5', 'ep:-1', 'e,p:1']) {
        const r = await c.command('subscribe', { channel: chan(), since });
        assert.equal(r.error?.code, ErrorCode.INVALID_POSITION, since);
      }
      assert.equal((await c.command('history', { channel: 'x', since: 'bad' })).error?.code, ErrorCode.INVALID_POSITION);
    });

    test('an invalid channel name gets error 113', async () => {
      const c = await connected();
      for (const channel of ['', 'has space', 'é', 'x'.repeat(256)]) {
        const r = await c.command('subscribe', { channel });
        assert.equal(r.error?.code, ErrorCode.INVALID_CHANNEL, JSON.stringify(channel).slice(0, 20));
      }
    });

    test('subscribing twice gets 105; unsubscribing a channel not subscribed gets 110', async () => {
      const c = await connected();
      const ch = chan();
      await c.ok('subscribe', { channel: ch });
      assert.equal((await c.command('subscribe', { channel: ch })).error?.code, ErrorCode.ALREADY_SUBSCRIBED);
      assert.equal((await c.command('unsubscribe', { channel: chan() })).error?.code, ErrorCode.NOT_SUBSCRIBED);
    });

    test('a deleted channel is reported to its subscriber as unsubscribed', async () => {
      const c = await connected();
      const ch = chan();
      await c.ok('subscribe', { channel: ch });
      await publish(server, ch, 1);
      await fetch(`${server.url()}/api/channels/${ch}`, { method: 'DELETE' });
      const f = await c.pushes.take((x) => x.type === 'unsubscribed');
      assert.deepEqual(f, { type: 'unsubscribed', channel: ch, reason: 'deleted' });
      assert.equal((await c.command('unsubscribe', { channel: ch })).error?.code, ErrorCode.NOT_SUBSCRIBED);
    });

    test('server shutdown closes every client with 3001 (reconnect)', async () => {
      const s = await startServer();
      const c = await WsClient.connected(wsUrl(s));
      const closing = s.close();
      assert.equal((await c.closed).code, 3001);
      await closing;
    });
  });
});
