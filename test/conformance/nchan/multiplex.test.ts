/** Nchan multiplexed subscriptions and multi-channel publish / delete (§5.3 20, 21). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useTarget } from './target.js';
import { chan, noteWs, parseSse, publish, raw, req, startOfSecond, waitSubscribers } from './clients.js';

describe(`nchan multiplexing (${process.env.HERALD_CONFORMANCE_TARGET ?? 'herald'})`, () => {
  const t = useTarget('multiplex');

  test('a multiplexed long-poll gets messages of all channels in order with t:[x],y,- ids', async () => {
    const a = chan('a');
    const b = chan('b');
    const c = chan('c');
    await startOfSecond();
    await publish(t.base, `/pub/${a}`, 'a1');
    await publish(t.base, `/pub/${b}`, 'b1');
    const path = `/sub/${a},${b},${c}`;
    const r1 = await req(t.base, path);
    assert.equal(r1.status, 200);
    assert.equal(r1.body, 'a1');
    assert.equal(r1.headers.get('etag'), '[0],-,-');
    const r2 = await req(t.base, path, { headers: { 'If-Modified-Since': r1.headers.get('last-modified')!, 'If-None-Match': r1.headers.get('etag')! } });
    assert.equal(r2.body, 'b1');
    assert.match(r2.headers.get('etag')!, /^[-0],\[0\],-$/);
    const waiting = req(t.base, path, { headers: { 'If-Modified-Since': r2.headers.get('last-modified')!, 'If-None-Match': r2.headers.get('etag')! } });
    await waitSubscribers(t.base, c, 1);
    await publish(t.base, `/pub/${c}`, 'c1');
    const r3 = await waiting;
    assert.equal(r3.body, 'c1');
    assert.match(r3.headers.get('etag')!, /^[-0],[-0],\[0\]$/, 'Nchan sometimes reports the other tags as -');
  });

  test('a multiplexed EventSource gets compound ids and resumes from a URL-encoded id', async () => {
    const a = chan('a');
    const b = chan('b');
    await startOfSecond();
    await publish(t.base, `/pub/${a}`, 'a1');
    await publish(t.base, `/pub/${b}`, 'b1');
    await publish(t.base, `/pub/${a}`, 'a2');
    const s = raw(t.base, `/es/${a},${b}`, { Accept: 'text/event-stream' });
    const text = await s.waitBody((x) => x.includes('data: a2') && x.includes('data: b1'));
    s.close();
    const evs = parseSse(text).filter((e) => !e.comment);
    // Each channel's backlog arrives in order; across channels Nchan interleaves buffered
    // messages by second only (under load a2 may come before b1).
    assert.deepEqual(evs.map((e) => e.data).sort(), ['a1', 'a2', 'b1']);
    assert.equal(evs[0]!.data, 'a1');
    assert.match(evs[0]!.id!, /^\d+:\[0\],-$/);
    const b1 = evs.find((e) => e.data === 'b1')!;
    assert.match(b1.id!, /^\d+:[-0],\[0\]$/, 'the other tag is - when a1 was in an earlier second');
    const resume = raw(t.base, `/es/${a},${b}?last_event_id=${encodeURIComponent(evs[0]!.id!)}`, { Accept: 'text/event-stream' });
    const t2 = await resume.waitBody((x) => x.includes('data: a2') && x.includes('data: b1'));
    resume.close();
    assert.deepEqual(
      parseSse(t2)
        .filter((e) => !e.comment)
        .map((e) => e.data)
        .sort(),
      ['a2', 'b1'],
    );
  });

  test('a multiplexed WebSocket receives messages of every channel', async () => {
    const a = chan('a');
    const b = chan('b');
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`${t.base.replace('http:', 'ws:')}/ws/${a},${b}`);
    noteWs(ws, ws.url);
    const got: string[] = [];
    ws.on('message', (d: Buffer) => got.push(d.toString()));
    await new Promise((r) => ws.once('open', r));
    await waitSubscribers(t.base, a, 1);
    await waitSubscribers(t.base, b, 1);
    await publish(t.base, `/pub/${b}`, 'to-b');
    await publish(t.base, `/pub/${a}`, 'to-a');
    const end = Date.now() + 5000;
    while (got.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(got, ['to-b', 'to-a']);
    ws.close();
  });

  test('255 channels are accepted; 256 are refused with 403', async () => {
    const r0 = Math.random().toString(36).slice(2, 6);
    const ids = Array.from({ length: 256 }, (_, i) => `${r0}${i}`);
    const ok = raw(t.base, `/sub/${ids.slice(0, 255).join(',')}`, { Accept: 'text/event-stream' });
    assert.equal((await ok.head).status, 200);
    ok.close();
    const r = await req(t.base, `/sub/${ids.join(',')}`);
    assert.equal(r.status, 403);
  });

  test('a channel id longer than the route maximum (default 1024) → 403', async () => {
    const r = await publish(t.base, `/pub/${'x'.repeat(1025)}`, 'long');
    assert.equal(r.status, 403);
    const ok = await publish(t.base, `/pub/${chan()}${'y'.repeat(200)}`, 'fits');
    assert.equal(ok.status, 202);
  });

  test('a multi-channel publish reaches the subscribers of each channel', async () => {
    const a = chan('a');
    const b = chan('b');
    const sa = req(t.base, `/lp/${a}`);
    const sb = req(t.base, `/lp/${b}`);
    await waitSubscribers(t.base, a, 1);
    await waitSubscribers(t.base, b, 1);
    const p = await publish(t.base, `/pub/${a},${b}`, 'both');
    assert.equal(p.status, 201);
    assert.deepEqual([(await sa).body, (await sb).body], ['both', 'both']);
  });

  test('a multi-channel delete ends every subscriber, including a multiplexed one holding a surviving channel', async () => {
    const a = chan('a');
    const b = chan('b');
    const keep = chan('keep');
    const sa = raw(t.base, `/lp/${a}`);
    const multi = raw(t.base, `/es/${b},${keep}`, { Accept: 'text/event-stream' });
    await waitSubscribers(t.base, a, 1);
    await waitSubscribers(t.base, keep, 1);
    const d = await req(t.base, `/pub/${a},${b}`, { method: 'DELETE' });
    assert.equal(d.status, 200);
    assert.equal((await sa.head).status, 410);
    await multi.ended;
    assert.match(multi.body().toString(), /:410: 410 Gone\n\n$/);
    sa.close();
  });
});
