/** Nchan publisher endpoint: status codes, channel info formats, DELETE (§5.3 1–7). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { useTarget, IS_HERALD } from './target.js';
import { chan, info, parsePlainInfo, publish, raw, req, waitSubscribers } from './clients.js';

describe(`nchan publisher (${process.env.HERALD_CONFORMANCE_TARGET ?? 'herald'})`, () => {
  const t = useTarget('publisher');

  test('GET on a channel that does not exist answers 404 with an empty body', async () => {
    const r = await req(t.base, `/pub/${chan()}`);
    assert.equal(r.status, 404);
    assert.equal(r.body, '');
  });

  test('POST with no subscribers answers 202 with plain channel info', async () => {
    const ch = chan();
    const r = await publish(t.base, `/pub/${ch}`, 'hello');
    assert.equal(r.status, 202);
    assert.equal(r.headers.get('content-type'), 'text/plain');
    const lines = r.body.split('\r\n');
    assert.equal(lines.length, 4, 'four CRLF-separated lines, no trailing newline');
    assert.equal(lines[0], 'queued messages: 1');
    assert.equal(lines[1], 'last requested: -1 sec. ago');
    assert.equal(lines[2], 'active subscribers: 0');
    assert.match(lines[3]!, /^last message id: \d+:0$/);
  });

  test('GET after a publish answers 200 with the same channel info the POST returned', async () => {
    const ch = chan();
    const p = await publish(t.base, `/pub/${ch}`, 'one');
    const g = await req(t.base, `/pub/${ch}`);
    assert.equal(g.status, 200);
    assert.equal(g.body, p.body);
  });

  test('PUT publishes like POST', async () => {
    const ch = chan();
    const r = await req(t.base, `/pub/${ch}`, { method: 'PUT', body: 'put-body' });
    assert.equal(r.status, 202);
    const lp = await req(t.base, `/sub/${ch}`);
    assert.equal(lp.body, 'put-body');
  });

  test('an empty POST is accepted and stored', async () => {
    const ch = chan();
    const r = await publish(t.base, `/pub/${ch}`, '');
    assert.equal(r.status, 202);
    assert.equal(parsePlainInfo(r.body)['queued messages'], '1');
  });

  test('POST while a subscriber waits answers 201 and counts it', async () => {
    const ch = chan();
    const sub = raw(t.base, `/lp/${ch}`);
    await waitSubscribers(t.base, ch, 1);
    const r = await publish(t.base, `/pub/${ch}`, 'x');
    assert.equal(r.status, 201);
    assert.equal(parsePlainInfo(r.body)['active subscribers'], '1');
    assert.equal((await sub.head).status, 200);
    sub.close();
  });

  test('message ids are time:tag with the tag counting within one second', async () => {
    const ch = chan();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await req(t.base, `/pub/${ch}`, { method: 'POST', body: `m${i}`, headers: { Accept: 'text/json' } });
      ids.push(JSON.parse(r.body).last_message_id);
    }
    for (const id of ids) assert.match(id, /^\d+:\d+$/);
    const [t0, g0] = ids[0]!.split(':').map(Number) as [number, number];
    const [t1, g1] = ids[1]!.split(':').map(Number) as [number, number];
    assert.ok(Math.abs(t0 - Date.now() / 1000) < 5, 'time is unix seconds');
    if (t0 === t1) assert.equal(g1, g0 + 1);
    else assert.equal(g1, 0);
  });

  describe('channel info formats chosen by Accept', () => {
    const cases: [string, string][] = [
      ['text/json', 'text/json'],
      ['application/json', 'text/json'],
      ['text/xml', 'text/xml'],
      ['application/xml', 'text/xml'],
      ['text/yaml', 'text/yaml'],
      ['application/yaml', 'text/yaml'],
      ['application/x-yaml', 'text/yaml'],
      ['text/html, application/json', 'text/json'],
      ['text/html', 'text/plain'],
    ];
    for (const [accept, ct] of cases) {
      test(`Accept: ${accept} → ${ct} with messages, requested, subscribers, last_message_id`, async () => {
        const ch = chan();
        const p = await req(t.base, `/pub/${ch}`, { method: 'POST', body: 'a', headers: { Accept: 'text/json' } });
        const id = JSON.parse(p.body).last_message_id as string;
        const r = await req(t.base, `/pub/${ch}`, { headers: { Accept: accept } });
        assert.equal(r.status, 200);
        assert.equal(r.headers.get('content-type'), ct);
        if (ct === 'text/json') {
          assert.equal(r.body, `{"messages": 1, "requested": -1, "subscribers": 0, "last_message_id": "${id}" }`);
        } else if (ct === 'text/xml') {
          assert.equal(
            r.body,
            `<?xml version="1.0" encoding="UTF-8" ?>\r\n<channel>\r\n  <messages>1</messages>\r\n  <requested>-1</requested>\r\n  <subscribers>0</subscribers>\r\n  <last_message_id>${id}</last_message_id>\r\n</channel>`,
          );
        } else if (ct === 'text/yaml') {
          assert.equal(r.body, `---\r\nmessages: 1\r\nrequested: -1\r\nsubscribers: 0\r\nlast_message_id: "${id}"\r\n\r\n`);
        } else {
          assert.equal(r.body, `queued messages: 1\r\nlast requested: -1 sec. ago\r\nactive subscribers: 0\r\nlast message id: ${id}`);
        }
      });
    }
  });

  test('requested becomes 0 once a subscriber has asked for the channel', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'a');
    await req(t.base, `/sub/${ch}`);
    const i = await info(t.base, ch);
    assert.ok(i && i.requested >= 0 && i.requested <= 5, 'seconds since the last request');
  });

  test('DELETE on an active channel answers 200 with the subscriber count; subscribers get 410', async () => {
    const ch = chan();
    const a = raw(t.base, `/lp/${ch}`);
    const b = raw(t.base, `/lp/${ch}`);
    await waitSubscribers(t.base, ch, 2);
    const d = await req(t.base, `/pub/${ch}`, { method: 'DELETE', headers: { Accept: 'text/json' } });
    assert.equal(d.status, 200);
    assert.equal(JSON.parse(d.body).subscribers, 2);
    for (const s of [a, b]) {
      const h = await s.head;
      assert.equal(h.status, 410);
      s.close();
    }
  });

  test('DELETE with no subscribers answers 200; DELETE on a missing channel answers 404', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'a');
    const d = await req(t.base, `/pub/${ch}`, { method: 'DELETE' });
    assert.equal(d.status, 200);
    assert.equal(parsePlainInfo(d.body)['queued messages'], '1');
    const missing = await req(t.base, `/pub/${chan()}`, { method: 'DELETE' });
    assert.equal(missing.status, 404);
    assert.equal(missing.body, '');
  });

  test('GET after DELETE: Herald answers 404 (Nchan 1.3.6 answers 200 with 0 messages)', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, 'a');
    await req(t.base, `/pub/${ch}`, { method: 'DELETE' });
    const g = await req(t.base, `/pub/${ch}`, { headers: { Accept: 'text/json' } });
    if (IS_HERALD) assert.equal(g.status, 404);
    else {
      assert.equal(g.status, 200);
      assert.equal(JSON.parse(g.body).messages, 0);
    }
  });

  test('an empty channel id: Herald answers 400 (Nchan 1.3.6 publishes to channel "")', async () => {
    const r = await publish(t.base, '/pub/', 'x');
    if (IS_HERALD) assert.equal(r.status, 400);
    else assert.equal(r.status, 202);
  });

  test('OPTIONS on a publisher lists GET, POST, PUT, DELETE and echoes the Origin', async () => {
    const r = await req(t.base, `/pub/${chan()}`, { method: 'OPTIONS', headers: { Origin: 'http://x.example' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('allow'), 'GET, POST, PUT, DELETE');
    assert.equal(r.headers.get('access-control-allow-methods'), 'GET, POST, PUT, DELETE');
    assert.equal(r.headers.get('access-control-allow-headers'), 'Content-Type');
    assert.equal(r.headers.get('access-control-allow-origin'), 'http://x.example');
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
  });

  test('a publish body is delivered byte for byte, Content-Type included', async () => {
    const ch = chan();
    const body = 'héllo wörld \u{1F600}';
    await publish(t.base, `/pub/${ch}`, body, { 'Content-Type': 'text/x-custom; charset=utf-8' });
    const r = await req(t.base, `/sub/${ch}`);
    assert.equal(r.body, body);
    assert.equal(r.headers.get('content-type'), 'text/x-custom; charset=utf-8');
  });

  test('a message published without Content-Type reaches long-poll with no Content-Type', async () => {
    const ch = chan();
    await publish(t.base, `/pub/${ch}`, Buffer.from('plain'));
    const sub = raw(t.base, `/lp/${ch}`);
    const h = await sub.head;
    assert.equal(h.headers['content-type'], undefined);
    sub.close();
  });
});
