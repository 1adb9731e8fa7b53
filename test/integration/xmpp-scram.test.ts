/**
 * SASL SCRAM-SHA-1 on the XMPP front with keys from the backend's scram hook (the example
 * backend keeps the keys of passwords set with `setPassword`): the real @xmpp/client logs in
 * with a password and chats; a wrong password and an unknown user fail alike; the connect hook
 * still judges the user; the mechanism is offered only with the hook; and hand-written bad
 * client messages, a broken hook and repeated failures get the SASL failure RFC 6120 names.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac, pbkdf2Sync, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import { useBackendServer } from '../helpers/backend-fixture.js';
import { startServer } from '../helpers/server.js';
import { TEST_SECRET } from '../helpers/tokens.js';
import { connectXmpp, type RawXmpp, rawWs } from '../helpers/xmpp.js';

const FRAMING = 'urn:ietf:params:xml:ns:xmpp-framing';
const OPEN = `<open xmlns='${FRAMING}' to='localhost' version='1.0'/>`;
const SASL = 'urn:ietf:params:xml:ns:xmpp-sasl';
const b64 = (s: string): string => Buffer.from(s).toString('base64');
const unb64 = (s: string): string => Buffer.from(s, 'base64').toString('utf8');

/** The client side of SCRAM-SHA-1 written out (RFC 5802 §3), to send what a real client cannot be made to send. */
function clientProof(password: string, serverFirst: string, clientFirstBare: string, finalWithoutProof: string): string {
  const attrs = Object.fromEntries(serverFirst.split(',').map((a) => [a[0], a.slice(2)]));
  const salted = pbkdf2Sync(password, Buffer.from(attrs.s!, 'base64'), Number(attrs.i), 20, 'sha1');
  const clientKey = createHmac('sha1', salted).update('Client Key').digest();
  const storedKey = createHash('sha1').update(clientKey).digest();
  const signature = createHmac('sha1', storedKey).update(`${clientFirstBare},${serverFirst},${finalWithoutProof}`).digest();
  return Buffer.from(clientKey.map((b, i) => b ^ signature[i]!)).toString('base64');
}

describe('XMPP SASL SCRAM-SHA-1 with keys from the scram hook', () => {
  const fx = useBackendServer('xmpp-scram', {}, (url) => ({
    auth: { hmacSecret: TEST_SECRET },
    // @xmpp/client derives the key with 4,096 sequential WebCrypto HMACs: seconds on a loaded machine.
    timing: { connectTimeoutMs: 60_000 },
    backend: { url: `${url}/herald`, connectPath: '/connect', scramPath: '/scram', timeoutMs: 1_000 },
  }));
  const raws: RawXmpp[] = [];
  /** A raw RFC 7395 stream past its first features. */
  const opened = async (): Promise<RawXmpp> => {
    const c = await rawWs(fx.server);
    raws.push(c);
    c.send(OPEN);
    await c.until(/<\/stream:features>/);
    return c;
  };
  /** Send a client-first message for `user`; returns the server-first message and the client-first-bare. */
  const first = async (c: RawXmpp, user: string, nonce = 'fyko+d2lbbFgONRv9qkxdawL'): Promise<{ serverFirst: string; bare: string }> => {
    const bare = `n=${user},r=${nonce}`;
    c.send(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${b64(`n,,${bare}`)}</auth>`);
    const text = await c.until(/<challenge[^>]*>[^<]+<\/challenge>/);
    return { serverFirst: unb64(/<challenge[^>]*>([^<]+)<\/challenge>/.exec(text)![1]!), bare };
  };
  const finalOf = (serverFirst: string): string => `c=${b64('n,,')},r=${/r=([^,]+)/.exec(serverFirst)![1]}`;
  /** A whole exchange on a new stream as `user` with `password`; resolves with the server's last answer (success or failure). */
  const exchange = async (user: string, password: string): Promise<string> => {
    const c = await opened();
    const { serverFirst, bare } = await first(c, user);
    const final = finalOf(serverFirst);
    c.send(`<response xmlns='${SASL}'>${b64(`${final},p=${clientProof(password, serverFirst, bare, final)}`)}</response>`);
    const text = await c.until(/<success[^>]*>[^<]*<\/success>|<\/failure>/);
    c.close();
    return text.slice(text.lastIndexOf('</challenge>'));
  };

  test('@xmpp/client logs in with SCRAM-SHA-1, verifies the server signature and chats with a token user', async () => {
    fx.backend.setPassword('sam', 'correct horse');
    const sam = await connectXmpp(fx.server, { username: 'sam', password: 'correct horse', mechanism: 'SCRAM-SHA-1' });
    // PLAIN with a connection token still works beside it.
    const tia = await connectXmpp(fx.server, { username: 'tia', password: 'user:tia' });
    try {
      assert.match(sam.jid, /^sam@localhost\//);
      await sam.xmpp.send(xml('presence'));
      await tia.xmpp.send(xml('presence'));
      await sam.xmpp.send(xml('message', { to: 'tia@localhost', type: 'chat', id: 'scram-1' }, xml('body', {}, 'hello over scram')));
      const got = await tia.stanzas.take((s) => s.is('message') && s.getChildText('body') === 'hello over scram');
      assert.match(String(got.attrs.from), /^sam@localhost/);
    } finally {
      await sam.stop();
      await tia.stop();
    }
  });

  test('a wrong password and an unknown user fail alike (not-authorized), after a challenge of the same shape', async () => {
    fx.backend.setPassword('una', 'right');
    const notAuthorized = `</challenge><failure xmlns="${SASL}"><not-authorized/></failure>`;
    assert.equal(await exchange('una', 'wrong'), notAuthorized);
    assert.equal(await exchange('nobody-here', 'right'), notAuthorized);
    assert.match(await exchange('una', 'right'), /<success/);
    const shape = /^r=fyko\+d2lbbFgONRv9qkxdawL[A-Za-z0-9+/=]+,s=[A-Za-z0-9+/=]+,i=\d+$/;
    const known = await first(await opened(), 'una');
    const unknown = await first(await opened(), 'nobody-here');
    assert.match(known.serverFirst, shape);
    assert.match(unknown.serverFirst, shape);
    // The decoy salt is stable per user, so asking twice does not tell a decoy from a real one.
    assert.equal(/s=([^,]+)/.exec((await first(await opened(), 'nobody-here')).serverFirst)![1], /s=([^,]+)/.exec(unknown.serverFirst)![1]);
  });

  test('the server signature in <success> proves the server holds the keys', async () => {
    fx.backend.setPassword('vic', 'pw-vic');
    const c = await opened();
    const { serverFirst, bare } = await first(c, 'vic');
    const final = finalOf(serverFirst);
    c.send(`<response xmlns='${SASL}'>${b64(`${final},p=${clientProof('pw-vic', serverFirst, bare, final)}`)}</response>`);
    const text = await c.until(/<success[^>]*>[^<]+<\/success>/);
    const v = unb64(/<success[^>]*>([^<]+)<\/success>/.exec(text)![1]!);
    const attrs = Object.fromEntries(serverFirst.split(',').map((a) => [a[0], a.slice(2)]));
    const salted = pbkdf2Sync('pw-vic', Buffer.from(attrs.s!, 'base64'), Number(attrs.i), 20, 'sha1');
    const serverKey = createHmac('sha1', salted).update('Server Key').digest();
    assert.equal(v, `v=${createHmac('sha1', serverKey).update(`${bare},${serverFirst},${final}`).digest('base64')}`);
  });

  test('the connect hook still judges a user who proved the password: a banned user is refused', async () => {
    fx.backend.setPassword('banned-bo', 'pw');
    const before = fx.backend.stats.hooks.connect ?? 0;
    assert.match(
      await exchange('banned-bo', 'pw'),
      /<failure xmlns="[^"]+"><not-authorized\/><text xml:lang="en">Connection denied by the backend: banned<\/text><\/failure>/,
    );
    assert.equal(fx.backend.stats.hooks.connect, before + 1);
  });

  test('bad client messages get the SASL failure RFC 6120 names; three failures end the stream', async () => {
    fx.backend.setPassword('wes', 'pw');
    const failure = (condition: string): RegExp => new RegExp(`<failure xmlns="${SASL}"><${condition}/>`);
    const cases: Array<[string, string]> = [
      [`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>not*base64</auth>`, 'incorrect-encoding'],
      [`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${b64('p=tls-unique,,n=wes,r=abc')}</auth>`, 'malformed-request'],
      [`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${b64('n,,m=ext,n=wes,r=abc')}</auth>`, 'malformed-request'],
      [`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${b64('n,a=other,n=wes,r=abc')}</auth>`, 'invalid-authzid'],
      [`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${b64(`n,,n=wes,r=${'x'.repeat(2_000)}`)}</auth>`, 'incorrect-encoding'],
      [`<response xmlns='${SASL}'>${b64('c=biws,r=x,p=AAAA')}</response>`, 'malformed-request'],
      [`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-256'>${b64('n,,n=wes,r=abc')}</auth>`, 'invalid-mechanism'],
    ];
    for (const [xml, condition] of cases) {
      const c = await opened();
      c.send(xml);
      await c.until(failure(condition));
      c.close();
    }
    // A mismatched nonce, a changed GS2 header and a wrong proof, on one stream: the third failure ends it.
    const c = await opened();
    let { serverFirst, bare } = await first(c, 'wes');
    c.send(`<response xmlns='${SASL}'>${b64(`c=${b64('n,,')},r=other,p=${b64('x'.repeat(20))}`)}</response>`);
    await c.until(failure('malformed-request'));
    ({ serverFirst, bare } = await first(c, 'wes', 'second-nonce'));
    c.send(`<response xmlns='${SASL}'>${b64(`c=${b64('y,,')},${finalOf(serverFirst).split(',')[1]},p=${b64('x'.repeat(20))}`)}</response>`);
    await c.until((t) => (t.match(/<failure /g) ?? []).length === 2);
    ({ serverFirst, bare } = await first(c, 'wes', 'third-nonce'));
    const final = finalOf(serverFirst);
    c.send(`<response xmlns='${SASL}'>${b64(`${final},p=${clientProof('not-it', serverFirst, bare, final)}`)}</response>`);
    await c.until(/<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>/);
    await c.closed;
    for (const r of raws) r.close();
  });

  test('a broken scram hook is a temporary failure, and the login works once it answers again', async () => {
    fx.backend.setPassword('xia', 'pw-xia');
    fx.backend.setBroken(true);
    try {
      const c = await opened();
      c.send(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${b64('n,,n=xia,r=abc')}</auth>`);
      await c.until(/<failure xmlns="[^"]+"><temporary-auth-failure\/><\/failure>/);
      c.close();
    } finally {
      fx.backend.setBroken(false);
    }
    const xia = await connectXmpp(fx.server, { username: 'xia', password: 'pw-xia', mechanism: 'SCRAM-SHA-1' });
    await xia.stop();
  });
});

describe('XMPP SCRAM-SHA-1 without the scram hook', () => {
  test('is not offered, and asking for it is invalid-mechanism', async () => {
    const server = await startServer({ dev: true });
    try {
      const c = await rawWs(server);
      c.send(OPEN);
      const features = await c.until(/<\/stream:features>/);
      assert.match(features, /<mechanisms xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><mechanism>PLAIN<\/mechanism><\/mechanisms>/);
      c.send(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${b64(`n,,n=ann,r=${randomBytes(8).toString('hex')}`)}</auth>`);
      await c.until(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-sasl"><invalid-mechanism\/>/);
      c.close();
    } finally {
      await server.close();
    }
  });

  test('nodes sharing backend.secret give an unknown user the same decoy salt; another secret gives another', async () => {
    const start = (secret: string): ReturnType<typeof startServer> =>
      startServer({ auth: { hmacSecret: TEST_SECRET }, backend: { url: 'http://127.0.0.1:9/herald', scramPath: '/scram', secret } });
    const servers = [await start('cluster-secret-0123456789'), await start('cluster-secret-0123456789'), await start('another-secret-0123456789')];
    try {
      const salts: string[] = [];
      for (const server of servers) {
        const c = await rawWs(server);
        c.send(OPEN);
        await c.until(/<\/stream:features>/);
        // Not a possible user id: answered with a decoy without asking the (unreachable) hook.
        c.send(`<auth xmlns='${SASL}' mechanism='SCRAM-SHA-1'>${b64('n,,n=no such user,r=abc')}</auth>`);
        const text = await c.until(/<challenge[^>]*>[^<]+<\/challenge>/);
        salts.push(/s=([^,]+)/.exec(unb64(/<challenge[^>]*>([^<]+)<\/challenge>/.exec(text)![1]!))![1]!);
        c.close();
      }
      assert.equal(salts[0], salts[1]);
      assert.notEqual(salts[0], salts[2]);
    } finally {
      for (const server of servers) await server.close();
    }
  });

  test('with the hook, SCRAM-SHA-1 is offered first', async () => {
    const server = await startServer({ auth: { hmacSecret: TEST_SECRET }, backend: { url: 'http://127.0.0.1:9/herald', scramPath: '/scram' } });
    try {
      const c = await rawWs(server);
      c.send(OPEN);
      assert.match(
        await c.until(/<\/stream:features>/),
        /<mechanisms xmlns="[^"]+"><mechanism>SCRAM-SHA-1<\/mechanism><mechanism>PLAIN<\/mechanism><\/mechanisms>/,
      );
      c.close();
    } finally {
      await server.close();
    }
  });
});
