/**
 * STARTTLS on the XMPP TCP port (RFC 6120 §5) with Herald terminating TLS: @xmpp/client
 * upgrades and logs in trusting a test CA; raw streams check what is offered before TLS, that
 * nothing is negotiated in the clear where TLS is required, and that STARTTLS out of place,
 * plaintext pipelined after it and garbage instead of a TLS handshake end the stream or the
 * connection without hurting the server.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { HeraldServer } from '../../src/index.js';
import { startServer } from '../helpers/server.js';
import { issueCert, makeCa, type TestCa } from '../helpers/tls.js';
import { signToken, TEST_SECRET } from '../helpers/tokens.js';
import { plain, rawTcp, type RawTcpXmpp, STREAM_HEADER, xmppTcpPort } from '../helpers/xmpp.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/xmpp-starttls-client.ts', import.meta.url));
const STARTTLS = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

/** Open a (new) stream and read its features. */
async function features(raw: RawTcpXmpp): Promise<string> {
  const seen = raw.received().split('</stream:features>').length;
  raw.send(STREAM_HEADER);
  const text = await raw.until((t) => t.split('</stream:features>').length > seen);
  return text.slice(text.lastIndexOf('<stream:features'));
}

/** STARTTLS on a fresh connection; resolves with the TLS socket once the handshake is done. */
async function upgrade(server: HeraldServer, ca: TestCa): Promise<RawTcpXmpp> {
  const raw = await rawTcp(server);
  await features(raw);
  raw.send(STARTTLS);
  await raw.until(/<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"\/>/);
  await raw.startTls(ca.cert);
  return raw;
}

describe('XMPP STARTTLS on the TCP port', () => {
  let ca: TestCa;
  let dir: string;
  let server: HeraldServer;

  before(async () => {
    ca = makeCa();
    dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-tls-'));
    const cert = issueCert(ca);
    copyFileSync(cert.certFile, join(dir, 'live.pem'));
    copyFileSync(cert.keyFile, join(dir, 'live.key'));
    server = await startServer({
      auth: { hmacSecret: TEST_SECRET },
      tls: { certFile: join(dir, 'live.pem'), keyFile: join(dir, 'live.key'), watchIntervalMs: 600_000 },
      xmpp: { tcpPort: 0 },
      im: { storePath: join(dir, 'im.db') },
    });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    ca.remove();
  });

  test('@xmpp/client upgrades with STARTTLS, logs in with a token and chats', async () => {
    const port = await xmppTcpPort(server);
    const args = [FIXTURE, String(port), 'tlsalice', await signToken('tlsalice'), 'tlsbob', await signToken('tlsbob')];
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['--import', 'tsx', ...args], { env: { ...process.env, NODE_EXTRA_CA_CERTS: ca.certFile }, timeout: 30_000 }, (err, stdout) =>
        err && !stdout ? reject(err) : resolve(stdout),
      ),
    );
    const result = JSON.parse(out.trim().split('\n').at(-1)!) as Record<string, unknown>;
    assert.equal(result.ok, true, String(result.error));
    assert.equal(result.secure, true);
    assert.match(String(result.protocol), /^TLSv1\.[23]$/);
    assert.equal(result.body, 'over starttls');
    assert.equal(result.from, 'tlsalice@localhost');
  });

  test('offers only STARTTLS, required, before TLS; after it SASL PLAIN and no second STARTTLS', async () => {
    const raw = await rawTcp(server);
    const before = await features(raw);
    assert.match(before, /<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"><required\/><\/starttls>/);
    assert.doesNotMatch(before, /mechanism|iq-auth/);
    raw.send(STARTTLS);
    await raw.until(/<proceed xmlns="urn:ietf:params:xml:ns:xmpp-tls"\/>/);
    const socket = await raw.startTls(ca.cert);
    assert.ok(socket.authorized);
    const after = await features(raw);
    assert.match(after, /<mechanism>PLAIN<\/mechanism>/);
    assert.doesNotMatch(after, /starttls/);
    raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain('tlscarol', await signToken('tlscarol'))}</auth>`);
    await raw.until(/<success/);
    raw.close();
  });

  test('SASL or legacy auth in the clear where TLS is required ends the stream with policy-violation', async () => {
    for (const attempt of [
      `<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain('tlsdave', 'x')}</auth>`,
      "<iq type='set' id='a1'><query xmlns='jabber:iq:auth'><username>tlsdave</username><password>x</password><resource>r</resource></query></iq>",
    ]) {
      const raw = await rawTcp(server);
      await features(raw);
      raw.send(attempt);
      await raw.until(/<policy-violation xmlns="urn:ietf:params:xml:ns:xmpp-streams"\/>[\s\S]*<\/stream:stream>/);
      await raw.closed;
      assert.doesNotMatch(raw.received(), /<success|type="result"/);
    }
  });

  test('STARTTLS a second time, inside TLS, is answered with <failure/> and the stream closes', async () => {
    const raw = await upgrade(server, ca);
    await features(raw);
    raw.send(STARTTLS);
    await raw.until(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-tls"\/><\/stream:stream>/);
    await raw.closed;
  });

  test('STARTTLS after authentication is answered with <failure/> and the stream closes', async () => {
    const raw = await upgrade(server, ca);
    await features(raw);
    raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain('tlserin', await signToken('tlserin'))}</auth>`);
    await raw.until(/<success/);
    await features(raw);
    raw.send(STARTTLS);
    await raw.until(/<failure xmlns="urn:ietf:params:xml:ns:xmpp-tls"\/><\/stream:stream>/);
    await raw.closed;
  });

  test('plaintext pipelined after <starttls/> is dropped unread', async () => {
    const raw = await rawTcp(server);
    await features(raw);
    raw.send(`${STARTTLS}<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain('tlsfay', 'x')}</auth>`);
    await raw.until(/<proceed/);
    await raw.startTls(ca.cert);
    const after = await features(raw);
    assert.match(after, /<mechanism>PLAIN<\/mechanism>/);
    assert.doesNotMatch(raw.received(), /<success|<failure|stream:error/);
    raw.close();
  });

  test('garbage instead of a TLS handshake closes the connection; the port keeps serving', async () => {
    const raw = await rawTcp(server);
    await features(raw);
    raw.send(STARTTLS);
    await raw.until(/<proceed/);
    raw.writeBytes(`${STREAM_HEADER}<auth/>`.repeat(20));
    await raw.closed;
    const next = await upgrade(server, ca);
    assert.match(await features(next), /PLAIN/);
    next.close();
  });

  test('a client that never completes the handshake is cut at timing.connectTimeoutMs', async () => {
    const raw = await rawTcp(server);
    await features(raw);
    raw.send(STARTTLS);
    await raw.until(/<proceed/);
    const started = Date.now();
    await raw.closed;
    assert.ok(Date.now() - started < 5_000);
  });

  test('STARTTLS uses the listen port certificate and follows its reload', async () => {
    const before = await serialOf(server, ca);
    const renewed = issueCert(ca);
    copyFileSync(renewed.keyFile, join(dir, 'live.key'));
    copyFileSync(renewed.certFile, join(dir, 'live.pem'));
    assert.equal(server.reloadTls(), true);
    const after = await serialOf(server, ca);
    assert.notEqual(after, before);
    assert.equal(after, renewed.serial);
  });
});

/** The serial number of the certificate a STARTTLS handshake presents. */
async function serialOf(server: HeraldServer, ca: TestCa): Promise<string> {
  const raw = await rawTcp(server);
  await features(raw);
  raw.send(STARTTLS);
  await raw.until(/<proceed/);
  const socket = await raw.startTls(ca.cert);
  const serial = socket.getPeerCertificate().serialNumber;
  raw.close();
  return serial;
}

describe('XMPP STARTTLS in development mode on loopback', () => {
  let ca: TestCa;
  let dir: string;
  let server: HeraldServer;

  before(async () => {
    ca = makeCa();
    dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-tls-dev-'));
    const cert = issueCert(ca);
    server = await startServer({
      dev: true,
      tls: { certFile: cert.certFile, keyFile: cert.keyFile },
      xmpp: { tcpPort: 0 },
      im: { storePath: join(dir, 'im.db') },
    });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
    ca.remove();
  });

  test('offers STARTTLS as optional beside PLAIN, and PLAIN works in the clear', async () => {
    const raw = await rawTcp(server);
    const offered = await features(raw);
    assert.match(offered, /<starttls xmlns="urn:ietf:params:xml:ns:xmpp-tls"\/>/);
    assert.match(offered, /<mechanism>PLAIN<\/mechanism>/);
    raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain('devgus')}</auth>`);
    await raw.until(/<success/);
    raw.close();
  });
});
