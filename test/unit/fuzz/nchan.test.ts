/**
 * Fuzzing the Nchan front's request decoding: message ids (Etag / If-None-Match /
 * Last-Event-ID tags) and channel ids from the URL. No input throws anything but
 * InvalidMessageIdError (answered 400), and every id the front writes reads back.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatTags, InvalidMessageIdError, MAX_MULTIPLEX, parseCompoundId, parseTags } from '../../../src/fronts/nchan/ids.js';
import { channelIds, matchRoute, resolveRoute } from '../../../src/fronts/nchan/routes.js';
import { fuzzParams, mutated } from '../../helpers/fuzz.js';

const ROUTES = [
  resolveRoute({ path: '/sub/', role: 'subscriber', splitDelimiter: ',' }),
  resolveRoute({ path: '/pub', role: 'publisher' }),
  resolveRoute({ path: '/ps/', role: 'pubsub', maxChannelIdLength: 64 }),
];

void describe('fuzz: Nchan ids', () => {
  void test('parseTags and parseCompoundId throw nothing but InvalidMessageIdError, and read tags as numbers >= -1', () => {
    fc.assert(
      fc.property(mutated(['1700000000:3', '1700000000:[2],-,5', '0:-', '17:[0]', '99:1,[2]', ':', '[', '']), fc.integer({ min: 1, max: 4 }), (text, count) => {
        try {
          const id = parseCompoundId(text, count);
          if (id) {
            assert.ok(!Number.isNaN(id.time));
            assert.equal(id.tags.length, count);
            for (const t of id.tags) assert.ok(t >= -1 && !Number.isNaN(t));
          }
          parseTags(text, count);
        } catch (e) {
          assert.ok(e instanceof InvalidMessageIdError, String(e));
        }
      }),
      fuzzParams(3000),
    );
  });

  void test('an id the front writes (time, then the tags) parses back to the same time and tags', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 40 }),
        fc.array(fc.integer({ min: -1, max: 2 ** 31 }), { minLength: 1, maxLength: 8 }),
        fc.nat(),
        (time, tags, active) => {
          const a = active % tags.length;
          const id = parseCompoundId(`${time}:${formatTags(tags, a)}`, tags.length);
          assert.deepEqual(id && { time: id.time, tags: [...id.tags] }, { time, tags });
        },
      ),
      fuzzParams(1000),
    );
  });

  void test('channel ids from any URL path or ?id= are refused with a reason or are valid ids', () => {
    const path = fc.oneof(
      mutated(['/sub/a,b,c', '/pub?id=news', '/ps/room-1', '/sub/%E2%82%AC', '/sub/%', '/ps/a%2Cb']),
      fc.tuple(fc.constantFrom('/sub/', '/ps/'), fc.string({ unit: 'binary', maxLength: 80 })).map(([p, s]) => p + encodeURIComponent(s)),
    );
    fc.assert(
      fc.property(path, (p) => {
        let url: URL;
        try {
          url = new URL(p, 'http://localhost');
        } catch {
          return; // the server answers a malformed URL with 400 before any front sees it
        }
        const m = matchRoute(ROUTES, url);
        if (!m) return;
        const ids = channelIds(m.route, m.idText, 255);
        if (typeof ids === 'string') return assert.ok(['empty', 'too-long', 'too-many', 'invalid'].includes(ids));
        assert.ok(ids.length >= 1 && ids.length <= MAX_MULTIPLEX);
        for (const id of ids) assert.match(id, /^[A-Za-z0-9_\-.:@=+!~#]{1,255}$/);
      }),
      fuzzParams(3000),
    );
  });
});
