/**
 * Answers the other files do not ask for, so that the header comparison with real Nchan
 * (transcript.ts) covers them: preflights without an Origin, answers that end a waiting
 * subscriber (DELETE, timeout) with and without an Origin and a resume position, a method a
 * route does not take, and every subscriber type's head with an Origin. Each test checks the statuses;
 * every header is checked by the comparison.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useTarget } from './target.js';
import { chan, publish, raw, req, waitSubscribers } from './clients.js';

describe(`nchan answers, header by header (${process.env.HERALD_CONFORMANCE_TARGET ?? 'herald'})`, () => {
  const t = useTarget('headers');
  const ORIGIN = { Origin: 'http://any.example' };

  for (const route of ['pub', 'sub', 'pubsub', 'cors', 'nocred', 'lp', 'pub_cors']) {
    test(`OPTIONS /${route}/ without an Origin`, async () => {
      const r = await req(t.base, `/${route}/${chan()}`, { method: 'OPTIONS' });
      assert.equal(r.status, 200);
    });
  }

  test('OPTIONS with an allowed Origin on a route with an allow list', async () => {
    const r = await req(t.base, `/cors/${chan()}`, { method: 'OPTIONS', headers: { Origin: 'http://good.example' } });
    assert.equal(r.status, 200);
  });

  for (const origin of [false, true]) {
    const h = origin ? ORIGIN : {};
    const label = origin ? 'with an Origin' : 'without an Origin';
    test(`DELETE ends a long-poll waiting at the head of a channel with messages (${label})`, async () => {
      const ch = chan();
      await publish(t.base, `/pub/${ch}`, 'm1');
      const first = await req(t.base, `/lp/${ch}`, { headers: h });
      assert.equal(first.status, 200);
      const waiting = req(t.base, `/lp/${ch}`, {
        headers: { ...h, 'If-Modified-Since': first.headers.get('last-modified')!, 'If-None-Match': first.headers.get('etag')! },
      });
      await waitSubscribers(t.base, ch, 1);
      const d = await req(t.base, `/pub/${ch}`, { method: 'DELETE', headers: h });
      assert.equal(d.status, 200);
      assert.equal((await waiting).status, 410);
    });

    test(`DELETE ends a long-poll waiting on an empty channel (${label})`, async () => {
      const ch = chan();
      const waiting = req(t.base, `/sub/${ch}`, { headers: h });
      await waitSubscribers(t.base, ch, 1);
      assert.equal((await req(t.base, `/pub/${ch}`, { method: 'DELETE' })).status, 200);
      assert.equal((await waiting).status, 410);
    });

    test(`a long-poll timeout (${label})`, async () => {
      const r = await req(t.base, `/lpto/${chan()}`, { headers: h });
      assert.equal(r.status, 408);
    });

    test(`interval-poll at the head (${label})`, async () => {
      const ch = chan();
      await publish(t.base, `/pub/${ch}`, 'only');
      const r = await req(t.base, `/poll/${ch}`, { headers: h });
      const n = await req(t.base, `/poll/${ch}`, {
        headers: { ...h, 'If-Modified-Since': r.headers.get('last-modified')!, 'If-None-Match': r.headers.get('etag')! },
      });
      assert.deepEqual([r.status, n.status], [200, 304]);
    });

    test(`publisher answers: 404, 202, 201, 200, DELETE 200 and 404 (${label})`, async () => {
      const ch = chan();
      assert.equal((await req(t.base, `/pub/${ch}`, { headers: h })).status, 404);
      assert.equal((await publish(t.base, `/pub/${ch}`, 'a', h)).status, 202);
      const waiting = req(t.base, `/newest/${ch}`);
      await waitSubscribers(t.base, ch, 1);
      assert.equal((await publish(t.base, `/pub/${ch}`, 'b', { ...h, 'Content-Type': 'text/x-b' })).status, 201);
      assert.equal((await waiting).status, 200);
      assert.equal((await req(t.base, `/pub/${ch}`, { headers: { ...h, Accept: 'text/json' } })).status, 200);
      assert.equal((await req(t.base, `/pub/${ch}`, { method: 'DELETE', headers: h })).status, 200);
      assert.equal((await req(t.base, `/pub/${chan()}`, { method: 'DELETE', headers: h })).status, 404);
    });

    test(`subscriber refusals: existing-only 403, bad id 400, hook down 502 (${label})`, async () => {
      assert.equal((await req(t.base, `/existing/${chan()}`, { headers: h })).status, 403);
      assert.equal((await req(t.base, `/sub/${chan()}`, { headers: { ...h, 'If-None-Match': '1:[1],[2]' } })).status, 400);
      assert.equal((await req(t.base, `/auth_down/${chan()}`, { headers: h })).status, 502);
    });

    for (const [type, th] of [
      ['eventsource', { Accept: 'text/event-stream' }],
      ['chunked', { TE: 'chunked' }],
      ['multipart', { Accept: 'multipart/mixed' }],
    ] as const) {
      test(`${type} head and end by DELETE (${label})`, async () => {
        const ch = chan();
        const s = raw(t.base, `/sub/${ch}`, { ...h, ...th });
        assert.equal((await s.head).status, 200);
        await waitSubscribers(t.base, ch, 1);
        await req(t.base, `/pub/${ch}`, { method: 'DELETE' });
        await s.ended;
      });
    }
  }

  test('raw stream head with an Origin', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'x');
    const s = raw(t.base, `/raw/${ch}`, ORIGIN);
    assert.equal((await s.head).status, 200);
    s.close();
  });

  test('DELETE on a subscriber route → 403', async () => {
    assert.equal((await req(t.base, `/sub/${chan()}`, { method: 'DELETE' })).status, 403);
  });
});
