/**
 * HTTP answers are bounded in bytes and time: a long-poll answer stops at
 * `limits.maxOutboundBytes` and says `more` (the client continues from its `position`), and a
 * socket whose peer never reads is cut after `timing.sendTimeoutMs`. Replays issue 12's attack:
 * several `GET /connection/poll?channels=a,b,c&last=100` on sockets that never read. A `history`
 * answer is paged the same way (over HTTP and WebSocket).
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { SseClient, WsClient } from '../helpers/clients.js';
import { chan, publish, startServer, waitFor, wsUrl } from '../helpers/server.js';

const BODY = 'x'.repeat(60_000);

/** Publish `n` 60 KB messages to each channel through the API. */
async function fill(server: HeraldServer, channels: string[], n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const r = await fetch(`${server.url()}/api/publish`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ channels, data: { i, body: BODY } }),
    });
    assert.equal(r.status, 200);
  }
}

/** The server's side of every TCP connection opened from now on. */
function serverSockets(server: HeraldServer): Socket[] {
  const list: Socket[] = [];
  server.http.on('connection', (s: Socket) => list.push(s));
  return list;
}

/** The server's sockets of the given client connections, once all are accepted. */
async function serverSide(all: Socket[], clients: Socket[]): Promise<Socket[]> {
  await waitFor(() => clients.every((c) => c.localPort !== undefined && all.some((s) => s.remotePort === c.localPort)), 15_000, 'connections accepted');
  return clients.map((c) => all.find((s) => s.remotePort === c.localPort)!);
}

/** Open `n` raw connections that send a GET and never read the answer. */
function stuckClients(server: HeraldServer, path: string, n: number): Socket[] {
  const port = Number(new URL(server.url()).port);
  return Array.from({ length: n }, () => {
    const s = connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    s.pause();
    s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
    return s;
  });
}

const held = (sockets: Socket[]): number => sockets.reduce((sum, s) => sum + s.writableLength, 0);

test('long-poll answers stop at limits.maxOutboundBytes with more:true, and the client pages through everything', async () => {
  const server = await startServer({ limits: { maxOutboundBytes: 200_000 } });
  try {
    const ch = chan('paged');
    await fill(server, [ch], 20);
    const seen: number[] = [];
    let since: string | undefined;
    let pages = 0;
    while (seen.length < 20) {
      const q = since ? `channel=${ch}&since=${encodeURIComponent(since)}` : `channel=${ch}&last=20`;
      const res = await fetch(`${server.url()}/connection/poll?${q}`);
      const text = await res.text();
      assert.ok(text.length <= 200_000 + 1_024, `answer of ${text.length} bytes`);
      const body = JSON.parse(text) as { position: string; more?: boolean; publications: Array<{ offset: number; data: { i: number } }> };
      for (const p of body.publications) seen.push(p.data.i);
      assert.equal(body.more, seen.length < 20 ? true : undefined);
      const last = body.publications.at(-1)!;
      assert.equal(body.position.split(':')[1], String(last.offset), 'the position is that of the last publication carried');
      since = body.position;
      pages++;
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 20 }, (_, i) => i),
      'every publication once, in order',
    );
    assert.ok(pages >= 6, `${pages} pages`);
  } finally {
    await server.close();
  }
});

test('a history answer stops at limits.maxOutboundBytes with more:true over HTTP and WebSocket; a WebSocket reader is not cut for it', async () => {
  const MAX = 200_000;
  const server = await startServer({ dev: true, limits: { maxOutboundBytes: MAX } });
  const ws = await WsClient.connected(wsUrl(server), { user: 'reader' });
  try {
    const ch = chan('history');
    await fill(server, [ch], 20);
    // 20 publications of 60 KB: 1.2 MB in one answer before, which cut the WebSocket (1006) and
    // was held whole for a POST /connection/command that never reads.
    const viaHttp = async (since?: string): Promise<{ text: string; body: any }> => {
      const res = await fetch(`${server.url()}/connection/command?user=reader`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: 1, cmd: 'history', channel: ch, limit: 100, ...(since ? { since } : {}) }),
      });
      const text = await res.text();
      return { text, body: (JSON.parse(text) as { result: unknown }).result };
    };
    const seen: number[] = [];
    let since: string | undefined;
    for (let page = 0; seen.length < 20; page++) {
      assert.ok(page < 20, 'paging ends');
      const { text, body } = await viaHttp(since);
      assert.ok(text.length <= MAX + 1_024, `answer of ${text.length} bytes`);
      for (const p of body.publications) seen.push(p.data.i);
      assert.equal(body.more, seen.length < 20 ? true : undefined);
      const last = body.publications.at(-1);
      since = `${last.epoch}:${last.offset}`;
    }
    assert.deepEqual(
      seen,
      Array.from({ length: 20 }, (_, i) => i),
      'every publication once, in order',
    );
    const r = await Promise.race([ws.command('history', { channel: ch, limit: 100 }), ws.closed.then((c) => ({ closed: c.code }))]);
    assert.equal((r as { closed?: number }).closed, undefined, 'the WebSocket reader stays connected');
    const { result } = r as { result: { more: boolean; publications: Array<{ data: { i: number } }> } };
    assert.equal(result.more, true);
    assert.deepEqual(
      result.publications.map((p) => p.data.i),
      [0, 1, 2],
    );
    const newest = await ws.ok('history', { channel: ch, limit: 100, reverse: true });
    assert.deepEqual(
      newest.publications.map((p: { data: { i: number } }) => p.data.i),
      [19, 18, 17],
      'a reverse answer keeps the newest',
    );
  } finally {
    ws.terminate();
    await server.close();
  }
});

test('a subscribe starting with more history than limits.maxOutboundBytes does not cut its reader: last keeps the newest, a cut resume is not recovered', async () => {
  const MAX = 200_000;
  const server = await startServer({ dev: true, limits: { maxOutboundBytes: MAX } });
  const ws = await WsClient.connected(wsUrl(server), { user: 'reader' });
  let sse: SseClient | undefined;
  try {
    const ch = chan('start');
    await fill(server, [ch], 20);
    // 1.2 MB of history in one subscribe answer cut the WebSocket (1006) and the SSE stream before.
    const closed = ws.closed.then((c) => ({ closed: c.code }));
    const last = await Promise.race([ws.command('subscribe', { channel: ch, last: 20 }), closed]);
    assert.equal((last as { closed?: number }).closed, undefined, 'the WebSocket reader stays connected');
    const { result } = last as { result: { recovered: boolean; offset: number; publications: Array<{ offset: number; data: { i: number } }> } };
    assert.deepEqual(
      result.publications.map((p) => p.data.i),
      [17, 18, 19],
      'the newest that fit',
    );
    assert.equal(result.recovered, true);
    const epoch = (await ws.ok('history', { channel: ch, limit: 0 })).epoch as string;
    await ws.ok('unsubscribe', { channel: ch });
    const since = await ws.ok('subscribe', { channel: ch, since: `${epoch}:0` });
    assert.deepEqual(
      since.publications.map((p: { data: { i: number } }) => p.data.i),
      [0, 1, 2],
      'a resume keeps the oldest',
    );
    assert.equal(since.recovered, false, 'and says it did not deliver everything');
    assert.equal(since.offset, 20);
    // SSE writes its start at once: the same bound, and the stream stays open.
    sse = await SseClient.open(`${server.url()}/connection/sse?channel=${ch}&last=20`);
    const subscribed = await sse.next('subscribed');
    assert.equal(subscribed.json.recovered, true);
    const got: number[] = [];
    for (let i = 0; i < 3; i++) got.push((await sse.next('pub')).json.data.i);
    assert.deepEqual(got, [17, 18, 19]);
    await publish(server, ch, { i: 20, body: 'live' });
    assert.equal((await sse.next('pub')).json.data.i, 20, 'live publications follow on the same stream');
  } finally {
    sse?.close();
    ws.terminate();
    await server.close();
  }
});

test('a run of WebSocket subscribes with history shares limits.maxOutboundBytes with what waits unsent, so it does not cut its own reader', async () => {
  const MAX = 200_000;
  const server = await startServer({ dev: true, limits: { maxOutboundBytes: MAX }, timing: { pingIntervalMs: 60_000 } });
  const ws = await WsClient.connected(wsUrl(server), { user: 'reader' });
  try {
    // 40 channels of 4 publications of 60 KB: each answer alone fits the limit (3 of 4), all
    // of them together are 7 MB, more than the kernel's socket buffers take while the reader
    // does not read. Before, every answer was capped on its own and the run cut its reader.
    const channels = Array.from({ length: 40 }, (_, i) => chan(`run${i}`));
    await fill(server, channels, 4);
    const closed = ws.closed.then((c) => ({ closed: c.code }));
    const socket = (ws.ws as unknown as { _socket: Socket })._socket;
    socket.pause();
    const answers = channels.map((channel) => ws.command('subscribe', { channel, last: 4 }));
    await new Promise((r) => setTimeout(r, 500));
    socket.resume();
    const replies = await Promise.race([Promise.all(answers), closed]);
    assert.ok(Array.isArray(replies), `the reader was cut (close ${(replies as { closed: number }).closed}) by its own subscribes`);
    const counts = replies.map((r) => (r.result as { publications: unknown[] }).publications.length);
    assert.ok(counts[0]! >= 1, 'the first answer carries what fits');
    assert.ok(
      counts.some((n) => n < 3),
      `answers written behind others carry less (${counts.join(', ')})`,
    );
    await publish(server, channels[0]!, { i: 99 });
    assert.equal(((await ws.nextPub(channels[0])).data as { i: number }).i, 99, 'the reader stays subscribed');
  } finally {
    ws.terminate();
    await server.close();
  }
});

test('several never-reading long-polls of channels=a,b,c&last=100 hold at most one capped answer each', async () => {
  const MAX = 256 * 1024;
  const server = await startServer({ limits: { maxOutboundBytes: MAX }, timing: { longPollTimeoutMs: 5_000 } });
  const clients: Socket[] = [];
  try {
    const [a, b, c] = [chan('a'), chan('b'), chan('c')];
    await fill(server, [a, b, c], 100);
    const all = serverSockets(server);
    clients.push(...stuckClients(server, `/connection/poll?channels=${a},${b},${c}&last=100`, 5));
    const sockets = await serverSide(all, clients);
    // Every answer is written (the server is not waiting on anything else) once its bytes stop growing.
    await new Promise((r) => setTimeout(r, 300));
    const bytes = held(sockets);
    assert.ok(bytes <= 5 * (MAX + 4_096), `the server holds ${bytes} bytes for 5 stuck polls (an uncapped answer is 18 MB)`);
  } finally {
    for (const s of clients) s.destroy();
    await server.close();
  }
});

test('a socket that never reads its answer is cut after timing.sendTimeoutMs and its bytes freed', async () => {
  // Large answers allowed, so the bytes pile up on the server and only the send timeout frees them.
  const server = await startServer({ limits: { maxOutboundBytes: 64 * 1024 * 1024 }, timing: { sendTimeoutMs: 500, longPollTimeoutMs: 5_000 } });
  const clients: Socket[] = [];
  try {
    // 18 MB per answer: more than the kernel's socket buffers take.
    const channels = [chan('s1'), chan('s2'), chan('s3')];
    await fill(server, channels, 100);
    const all = serverSockets(server);
    clients.push(...stuckClients(server, `/connection/poll?channels=${channels.join(',')}&last=100`, 3));
    const sockets = await serverSide(all, clients);
    let peak = 0;
    const closed = sockets.map((s) => new Promise<void>((r) => s.once('close', () => r())));
    let done = false;
    void Promise.all(closed).then(() => (done = true));
    await waitFor(
      () => {
        peak = Math.max(peak, held(sockets));
        return done;
      },
      20_000,
      'every stuck socket cut',
    );
    assert.ok(peak > 10_000_000, `the answers were held (${peak} bytes)`);
    assert.ok(server.sendTimeout.cut >= 3, `${server.sendTimeout.cut} sockets cut`);
    assert.equal(held(sockets), 0);
    // A reading client in the same server is unaffected.
    const res = await fetch(`${server.url()}/connection/poll?channels=${channels.join(',')}&last=100`);
    assert.equal(((await res.json()) as { publications: unknown[] }).publications.length, 300);
  } finally {
    for (const s of clients) s.destroy();
    await server.close();
  }
});

test('a request body that never finishes arriving gets 408 and the connection closed after timing.requestTimeoutMs', async () => {
  const server = await startServer({ timing: { requestTimeoutMs: 300 } });
  try {
    const all = serverSockets(server);
    const port = Number(new URL(server.url()).port);
    const client = connect(port, '127.0.0.1');
    let answer = '';
    client.on('data', (d: Buffer) => (answer += d.toString()));
    client.on('error', () => undefined);
    const ended = new Promise<void>((r) => client.once('close', () => r()));
    // Declares 100 bytes and sends 10, then nothing.
    client.write('POST /connection/command HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"cmd":"pu');
    const [side] = await serverSide(all, [client]);
    const closed = new Promise<void>((r) => side!.once('close', () => r()));
    await Promise.all([closed, ended]);
    assert.match(answer, /^HTTP\/1\.1 408 /);
  } finally {
    await server.close();
  }
});
