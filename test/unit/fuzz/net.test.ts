/**
 * Fuzzing what the network policy reads from any request: the client address walk over
 * `X-Forwarded-For`, `Host`, `Origin` and `Sec-Fetch-Site` (loopback trust, the CSRF and
 * DNS-rebinding guards, the Origin policy), the admin session cookie, and the query of the native
 * HTTP transports. Nothing throws but documented HeraldErrors, and no input buys trust that the
 * rules do not grant.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { hasAdminSession, newAdminSession } from '../../../src/api/admin-session.js';
import { resolveConfig } from '../../../src/core/config.js';
import { ERRORS, HeraldError } from '../../../src/core/errors.js';
import { isLoopbackAddress, NetPolicy, plainAddress, type RequestFacts } from '../../../src/core/net-policy.js';
import { parseSubscribeRequest } from '../../../src/fronts/native/http-subscriber.js';
import { anyText, fuzzParams, mutated } from '../../helpers/fuzz.js';

const PROXIES = ['127.0.0.1', '10.0.0.0/8', '::1'];
const policy = new NetPolicy(
  resolveConfig({
    trustLoopback: true,
    trustedProxies: PROXIES,
    allowedHosts: ['herald.example', '*.internal.example'],
    allowedOrigins: ['https://app.example'],
  }),
);

/** Loopback trusted, no proxy configured: a same-host proxy relaying outside clients. */
const noProxies = new NetPolicy(resolveConfig({ trustLoopback: true }));

/** The test's own reading of PROXIES, to judge the policy's answers by. */
const proxyList = new BlockList();
proxyList.addAddress('127.0.0.1', 'ipv4');
proxyList.addSubnet('10.0.0.0', 8, 'ipv4');
proxyList.addAddress('::1', 'ipv6');
function isTrustedProxy(peer: string): boolean {
  const a = plainAddress(peer);
  const family = isIP(a);
  return family !== 0 && proxyList.check(a, family === 6 ? 'ipv6' : 'ipv4');
}

const PEERS = ['127.0.0.1', '::ffff:127.0.0.1', '::1', '10.1.2.3', '198.51.100.4', '::ffff:203.0.113.9', '2001:db8::1'];
const HOPS = mutated(['203.0.113.9', '127.0.0.1, 203.0.113.9', '1.1.1.1, 10.0.0.7', '::1', 'junk, 10.0.0.7', '[::1]:80', '10.0.0.8, 127.0.0.2']);
const HOSTS = mutated([
  'herald.example',
  'herald.example:8443',
  'a.internal.example',
  '127.0.0.1:80',
  '[::1]:8080',
  'localhost',
  'evil.example',
  'internal.example.evil.example',
]);
const ORIGINS = mutated([
  'https://app.example',
  'http://herald.example',
  'https://herald.example:8443',
  'null',
  'http://evil.example',
  'file://',
  'http://[::1]:8080',
]);
const optional = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });

const facts: fc.Arbitrary<RequestFacts> = fc.record({
  peer: fc.oneof(fc.constantFrom(...PEERS), anyText),
  forwardedFor: optional(HOPS),
  forwarded: fc.boolean(),
  host: optional(HOSTS),
  origin: optional(ORIGINS),
  fetchSite: optional(fc.oneof(fc.constantFrom('cross-site', 'same-site', 'same-origin', 'none'), anyText)),
});

/** Whether `address` is the peer itself or one of the hops it reported. */
function fromRequest(address: string, peer: string, forwardedFor: string | undefined): boolean {
  if (address === plainAddress(peer)) return true;
  return (forwardedFor ?? '').split(',').some((h) => plainAddress(h.trim()) === address);
}

void describe('fuzz: network policy inputs', () => {
  void test('the client address is the peer or a hop it reported, and only a trusted proxy moves it off the peer', () => {
    fc.assert(
      fc.property(fc.oneof(fc.constantFrom(...PEERS), anyText), optional(HOPS), (peer, forwardedFor) => {
        const client = policy.clientAddress(peer, forwardedFor);
        assert.ok(fromRequest(client, peer, forwardedFor), `${client} from ${peer} / ${forwardedFor}`);
        if (client !== plainAddress(peer)) {
          assert.notEqual(isIP(client), 0, 'a hop is believed only when it is an IP address');
          assert.ok(isTrustedProxy(peer), `only a trusted proxy is believed (peer ${peer})`);
        }
      }),
      fuzzParams(3000),
    );
  });

  void test('loopback trust, Host, cross-site and Origin decisions never throw and never grant more than their rules', () => {
    fc.assert(
      fc.property(facts, (f) => {
        const trusted = policy.loopbackTrusted(f);
        if (trusted) assert.ok(isLoopbackAddress(policy.clientAddress(f.peer, f.forwardedFor)));
        if (f.forwarded && !isTrustedProxy(f.peer)) assert.equal(trusted, false, 'relayed by an unknown proxy');
        if (f.forwarded) assert.equal(noProxies.loopbackTrusted(f), false, 'a relayed request is not loopback without trustedProxies');
        else assert.equal(noProxies.loopbackTrusted(f), isLoopbackAddress(f.peer));
        const refused = policy.crossSiteReason(f);
        if (refused === undefined) {
          assert.ok(policy.hostAllowed(f.host), 'an unknown Host is always refused');
          assert.ok(f.fetchSite !== 'cross-site' && f.fetchSite !== 'same-site');
        }
        if (f.origin !== undefined) {
          const credentialed = policy.originCredentialed(f.origin, f.host);
          if (credentialed) assert.ok(policy.originAllowed(f.origin, f.host), 'credentials only for an allowed origin');
          if (policy.originAllowed(f.origin, f.host) && f.origin.toLowerCase() !== 'https://app.example') {
            assert.ok(f.host !== undefined && policy.hostAllowed(f.host), 'an unlisted origin passes only as the request’s own, on an allowed Host');
          }
        }
      }),
      fuzzParams(3000),
    );
  });

  void test('any Cookie header opens an admin session only with the value signed under the key', () => {
    const key = 'fuzz-admin-key-0123456789';
    const now = Date.now();
    const good = newAdminSession(key, now);
    const cookies = mutated([
      `herald_admin=${good}`,
      `a=1; herald_admin=${good}; b=2`,
      'herald_admin=1.x',
      'herald_admin=',
      `herald_admin=${good.slice(0, -2)}`,
    ]);
    fc.assert(
      fc.property(cookies, (cookie) => {
        const req = { headers: { cookie } } as IncomingMessage;
        const opened = hasAdminSession(req, key, now);
        if (opened) assert.ok(cookie.includes(good), `opened by ${JSON.stringify(cookie)}`);
        assert.equal(hasAdminSession(req, 'another-key-0123456789', now), false);
      }),
      fuzzParams(3000),
    );
  });

  void test('native HTTP transport queries give channels and positions, or a documented 400-class error', () => {
    const queries = mutated([
      'channel=news',
      'channels=news,chat&since=e1:3,e2:0',
      'channel=a&channel=b&last=5',
      'channels=a,,b&lastEventId=x:1,y:2',
      'channel=news&since=abc',
      'channels=a,a',
    ]);
    fc.assert(
      fc.property(queries, optional(mutated(['e1:3', 'e1:3,e2:0', ':', ''])), (query, lastEventId) => {
        const req = { headers: lastEventId === undefined ? {} : { 'last-event-id': lastEventId } } as IncomingMessage;
        let url: URL;
        try {
          url = new URL(`http://h/connection/sse?${query}`);
        } catch {
          return;
        }
        try {
          const r = parseSubscribeRequest(req, url, 8);
          assert.ok(r.channels.length >= 1 && r.channels.length <= 8);
          assert.equal(new Set(r.channels).size, r.channels.length);
          assert.equal(r.since.length, r.channels.length);
          if (r.last !== undefined) assert.ok(Number.isSafeInteger(r.last) && r.last >= 0);
        } catch (e) {
          assert.ok(e instanceof HeraldError, String(e));
          assert.ok(e.code in ERRORS);
          assert.ok(e.status >= 400 && e.status < 500, `${e.code} answers ${e.status}`);
        }
      }),
      fuzzParams(3000),
    );
  });
});
