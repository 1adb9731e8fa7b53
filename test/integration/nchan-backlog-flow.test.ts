/**
 * A streaming Nchan subscriber (EventSource, WebSocket, chunked) whose start position selects
 * more stored messages than `limits.maxOutboundBytes` gets all of them, at the pace it reads,
 * instead of being cut as a slow consumer for its own start; live messages published meanwhile
 * follow in order, with no gap and no duplicate. A reader that stops reading is still cut once
 * what waits for it passes the limit.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import type { HeraldServer } from '../../src/index.js';
import { chan, startServer, waitFor } from '../helpers/server.js';

const MAX_OUTBOUND = 256 * 1024;
/** 40 stored messages of 30 KB: 1.2 MB, over four times the limit. */
const STORED = 40;
const BODY_BYTES = 30_000;

/** Message `n` of a channel: its number, padded to BODY_BYTES. */
function body(n: number): string {
  return `${n}:`.padEnd(BODY_BYTES, 'x');
}

function numberOf(data: string): number {
  return Number(data.slice(0, data.indexOf(':')));
}

describe('Nchan streaming subscribers catch up on a backlog larger than limits.maxOutboundBytes', () => {
  let server: HeraldServer;
  let base: string;
  before(async () => {
    server = await startServer({
      limits: { maxOutboundBytes: MAX_OUTBOUND },
      nchan: {
        routes: [
          { path: '/pub/', role: 'publisher', bufferLength: 500 },
          { path: '/sub/', role: 'subscriber', firstMessage: 'oldest', types: ['eventsource', 'websocket', 'chunked'] },
        ],
      },
    });
    base = server.url();
  });
  after(async () => {
    await server.close();
  });

  async function publish(ch: string, n: number): Promise<void> {
    const r = await fetch(`${base}/pub/${ch}`, { method: 'POST', body: body(n) });
    assert.ok(r.ok, `publish ${n} answered ${r.status}`);
  }

  async function stored(ch: string): Promise<void> {
    for (let n = 1; n <= STORED; n++) await publish(ch, n);
  }

  /** Publish live messages STORED+1 … STORED+count while the backlog is being delivered. */
  async function live(ch: string, count: number): Promise<void> {
    for (let n = STORED + 1; n <= STORED + count; n++) await publish(ch, n);
  }

  function assertInOrder(got: number[], last: number): void {
    assert.deepEqual(
      got,
      Array.from({ length: last }, (_, i) => i + 1),
      'every message once, in order',
    );
  }

  test('EventSource receives all 1.2 MB of stored messages and the live ones after them', async () => {
    const ch = chan('bl-es');
    await stored(ch);
    const es = new EventSource(`${base}/sub/${ch}`);
    const got: number[] = [];
    let errors = 0;
    es.onmessage = (e) => got.push(numberOf(e.data as string));
    es.onerror = () => errors++;
    try {
      await waitFor(() => got.length >= 1, 5_000, 'first stored message');
      await live(ch, 5);
      await waitFor(() => got.length >= STORED + 5, 10_000, `all ${STORED + 5} messages (got ${got.length})`);
      assertInOrder(got, STORED + 5);
      assert.equal(errors, 0, 'the stream was never cut (no reconnect)');
    } finally {
      es.close();
    }
  });

  test('WebSocket receives all stored messages and the live ones after them', async () => {
    const ch = chan('bl-ws');
    await stored(ch);
    const ws = new WebSocket(`${base.replace('http', 'ws')}/sub/${ch}`);
    const got: number[] = [];
    let closed: number | undefined;
    ws.on('message', (d) => got.push(numberOf(String(d))));
    ws.on('close', (code) => (closed = code));
    try {
      await waitFor(() => got.length >= 1, 5_000, 'first stored message');
      await live(ch, 5);
      await waitFor(() => got.length >= STORED + 5 || closed !== undefined, 10_000, 'all messages or a close');
      assert.equal(closed, undefined, 'the socket was not cut');
      assertInOrder(got, STORED + 5);
    } finally {
      ws.terminate();
    }
  });

  test('a chunked reader that reads slowly still gets every stored message', async () => {
    const ch = chan('bl-chunked');
    await stored(ch);
    const res = await fetch(`${base}/sub/${ch}`, { headers: { TE: 'chunked' } });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let bytes = 0;
    try {
      while (bytes < STORED * BODY_BYTES) {
        const { value, done } = await reader.read();
        assert.ok(!done, `the stream ended after ${bytes} bytes`);
        bytes += value.length;
        // Slow reader: the server has to wait for it rather than queue everything.
        await new Promise((r) => setTimeout(r, 2));
      }
      assert.equal(bytes, STORED * BODY_BYTES);
    } finally {
      await reader.cancel();
    }
  });

  test('a reader that stops reading during its backlog is cut once live messages waiting for it pass the limit', async () => {
    const ch = chan('bl-stuck');
    // 12 MB stored: more than the kernel's socket buffers take, so the backlog has to wait.
    const backlog = 400;
    for (let n = 1; n <= backlog; n++) await publish(ch, n);
    const before = server.nchan!.subscribers.count;
    const sock = net.connect(server.address().port, '127.0.0.1');
    await new Promise<void>((resolve) => sock.once('connect', resolve));
    sock.pause();
    sock.write(`GET /sub/${ch} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n`);
    try {
      await waitFor(() => server.nchan!.subscribers.count === before + 1, 5_000, 'subscribed');
      // Live messages wait behind the unsent backlog until their bytes pass the limit.
      for (let n = backlog + 1; n <= backlog + Math.ceil(MAX_OUTBOUND / BODY_BYTES) + 4; n++) {
        await publish(ch, n);
        if (server.nchan!.subscribers.count === before) break;
      }
      await waitFor(() => server.nchan!.subscribers.count === before, 5_000, 'the stuck reader was cut');
    } finally {
      sock.destroy();
    }
  });
});
