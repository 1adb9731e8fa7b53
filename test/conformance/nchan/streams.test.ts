/** Nchan streaming subscribers: EventSource, chunked, multipart/mixed, raw stream (§5.3 6, 15–18). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { useTarget } from './target.js';
import { chan, decodeChunks, notingFetch, parseSse, publish, raw, req, waitSubscribers } from './clients.js';

describe(`nchan streaming subscribers (${process.env.HERALD_CONFORMANCE_TARGET ?? 'herald'})`, () => {
  const t = useTarget('streams');

  const ES = { Accept: 'text/event-stream' };

  test('EventSource: headers, ": hi" preamble, id time:tag, event from X-EventSource-Event, one data line per body line', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'x1');
    await publish(t.base, `/pub/${ch}`, 'l1\nl2', { 'X-EventSource-Event': 'foo' });
    const s = raw(t.base, `/sub/${ch}`, ES);
    const h = await s.head;
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-type'], 'text/event-stream; charset=utf-8');
    assert.equal(h.headers['content-length'], undefined);
    assert.equal(h.headers['transfer-encoding'], undefined);
    const text = await s.waitBody((b) => b.includes('data: l2\n\n'));
    const m = /^: hi\n\nid: (\d+):0\ndata: x1\n\nevent: foo\nid: (\d+):(\d+)\ndata: l1\ndata: l2\n\n$/.exec(text);
    assert.ok(m, text);
    // The tag counts within one second: 1 in the same second, 0 in a later one.
    assert.equal(Number(m[3]), m[1] === m[2] ? 1 : 0);
    s.close();
  });

  test('EventSource: an empty message is delivered as an empty data line', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, '');
    const s = raw(t.base, `/sub/${ch}`, ES);
    const text = await s.waitBody((b) => b.includes('data: \n\n'));
    assert.match(text, /^: hi\n\nid: \d+:0\ndata: \n\n$/);
    s.close();
  });

  for (const how of ['Last-Event-ID header', 'last_event_id query']) {
    test(`EventSource resumes after the id given by ${how}`, async () => {
      const ch = chan();
      const ids: string[] = [];
      for (const m of ['a', 'b', 'c']) {
        const r = await req(t.base, `/pub/${ch}`, { method: 'POST', body: m, headers: { Accept: 'text/json' } });
        ids.push(JSON.parse(r.body).last_message_id);
      }
      const s = how.startsWith('Last')
        ? raw(t.base, `/sub/${ch}`, { ...ES, 'Last-Event-ID': ids[0]! })
        : raw(t.base, `/sub/${ch}?last_event_id=${encodeURIComponent(ids[0]!)}`, ES);
      const text = await s.waitBody((b) => b.includes('data: c\n'));
      assert.deepEqual(
        parseSse(text)
          .filter((e) => !e.comment)
          .map((e) => e.data),
        ['b', 'c'],
      );
      s.close();
    });
  }

  test('EventSource (eventsource npm client) receives live messages with their ids and named events', async () => {
    const ch = chan();
    const es = new EventSource(`${t.base}/es/${ch}`, { fetch: notingFetch });
    const got: string[] = [];
    const done = new Promise<void>((resolve) => {
      es.addEventListener('message', (e) => {
        got.push(`message:${e.data}:${e.lastEventId}`);
      });
      es.addEventListener('custom', (e) => {
        got.push(`custom:${e.data}`);
        resolve();
      });
    });
    await new Promise<void>((resolve, reject) => {
      es.onopen = () => resolve();
      es.onerror = (e) => reject(new Error(String(e.message)));
    });
    await waitSubscribers(t.base, ch, 1);
    const p = await req(t.base, `/pub/${ch}`, { method: 'POST', body: 'live', headers: { Accept: 'text/json' } });
    await publish(t.base, `/pub/${ch}`, 'named', { 'X-EventSource-Event': 'custom' });
    await done;
    es.close();
    assert.deepEqual(got, [`message:live:${JSON.parse(p.body).last_message_id}`, 'custom:named']);
  });

  test('EventSource: DELETE sends ":410: 410 Gone" and closes the stream', async () => {
    const ch = chan();
    const s = raw(t.base, `/sub/${ch}`, ES);
    await s.waitBody((b) => b.startsWith(': hi\n\n'));
    await waitSubscribers(t.base, ch, 1);
    await req(t.base, `/pub/${ch}`, { method: 'DELETE' });
    await s.ended;
    assert.equal(s.body().toString(), ': hi\n\n:410: 410 Gone\n\n');
  });

  test('EventSource on a deleted-before-handshake… a plain GET to an ES-only route stays 403', async () => {
    const r = await req(t.base, `/es/${chan()}`);
    assert.equal(r.status, 403);
  });

  test('EventSource ping interval: "event: ping" blocks between messages', async () => {
    const s = raw(t.base, `/es_ping/${chan()}`, ES);
    const text = await s.waitBody((b) => b.split('event: ping\n\n').length >= 3, 5000);
    assert.match(text, /^: hi\n\n(event: ping\n\n)+$/);
    s.close();
  });

  test('chunked: one chunk per message, empty messages skipped, DELETE ends the stream', async () => {
    const ch = chan();
    const s = raw(t.base, `/sub/${ch}`, { TE: 'chunked' });
    const h = await s.head;
    assert.equal(h.status, 200);
    assert.equal(h.headers['transfer-encoding'], 'chunked');
    await waitSubscribers(t.base, ch, 1);
    await publish(t.base, `/pub/${ch}`, 'one');
    await publish(t.base, `/pub/${ch}`, '');
    await publish(t.base, `/pub/${ch}`, 'three');
    await s.waitBody((b) => b.includes('three'));
    await req(t.base, `/pub/${ch}`, { method: 'DELETE' });
    await s.ended;
    const { chunks, last } = decodeChunks(s.body());
    assert.deepEqual(
      chunks.map((c) => c.toString()),
      ['one', 'three'],
    );
    assert.equal(last, true, 'the stream ends with the zero-length chunk');
  });

  test('multipart/mixed: boundary, one part per message with Last-Modified, Etag, Content-Type; ends --B--', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'first', { 'Content-Type': 'text/x-one' });
    const s = raw(t.base, `/sub/${ch}`, { Accept: 'multipart/mixed' });
    const h = await s.head;
    assert.equal(h.status, 200);
    const m = /^multipart\/mixed; boundary=(.{32})$/.exec(h.headers['content-type'] ?? '');
    assert.ok(m, `content-type ${h.headers['content-type']}`);
    const B = m[1]!;
    await s.waitBody((b) => b.includes('first'));
    await waitSubscribers(t.base, ch, 1);
    await publish(t.base, `/pub/${ch}`, '');
    await publish(t.base, `/pub/${ch}`, 'l1\nl2');
    await s.waitBody((b) => b.includes('l2'));
    await req(t.base, `/pub/${ch}`, { method: 'DELETE' });
    await s.ended;
    const text = s.body().toString();
    const esc = B.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    const lm = '[A-Z][a-z]{2}, \\d{2} [A-Z][a-z]{2} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT';
    const re = new RegExp(
      `^--${esc}\\r\\nLast-Modified: ${lm}\\r\\nEtag: 0\\r\\nContent-Type: text/x-one\\r\\n\\r\\nfirst\\r\\n--${esc}` +
        `\\r\\nLast-Modified: ${lm}\\r\\nEtag: \\d+\\r\\n\\r\\n\\r\\n--${esc}` +
        `\\r\\nLast-Modified: ${lm}\\r\\nEtag: \\d+\\r\\n\\r\\nl1\\nl2\\r\\n--${esc}--\\r\\n$`,
    );
    assert.match(text, re);
  });

  test('raw stream: Connection: close, each body followed by a newline, empty messages as a bare newline', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'old');
    const s = raw(t.base, `/raw/${ch}`);
    const h = await s.head;
    assert.equal(h.status, 200);
    assert.equal(h.headers.connection, 'close');
    await s.waitBody((b) => b === 'old\n');
    await waitSubscribers(t.base, ch, 1);
    await publish(t.base, `/pub/${ch}`, '');
    await publish(t.base, `/pub/${ch}`, 'new');
    assert.equal(await s.waitBody((b) => b.includes('new')), 'old\n\nnew\n');
    await req(t.base, `/pub/${ch}`, { method: 'DELETE' });
    await s.ended;
  });

  test('a streaming subscriber is counted while connected', async () => {
    const ch = chan();
    const a = raw(t.base, `/sub/${ch}`, ES);
    const b = raw(t.base, `/sub/${ch}`, { TE: 'chunked' });
    await waitSubscribers(t.base, ch, 2);
    const p = await publish(t.base, `/pub/${ch}`, 'x');
    assert.equal(p.status, 201);
    a.close();
    b.close();
  });
});
