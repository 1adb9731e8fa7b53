/**
 * TLS on the listen port: Node clients (fetch through undici, `ws`, `tls.connect`) trust a CA made
 * for the test; the certificate is reloaded when its files change and on SIGHUP, without a
 * restart, and a broken pair never replaces a working one.
 */
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import WebSocket from 'ws';
import type { HeraldServer } from '../../src/index.js';
import { sleep, startServer, wsUrl } from '../helpers/server.js';
import { issueCert, makeCa, type TestCa } from '../helpers/tls.js';

/** The serial number of the certificate a fresh TLS handshake gets. */
function servedSerial(server: HeraldServer, ca: string): Promise<string> {
  const { port } = server.address();
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      assert.equal(s.alpnProtocol, 'http/1.1', 'HTTP/1.1 only');
      s.end();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

describe('TLS', () => {
  let ca: TestCa;
  before(() => {
    ca = makeCa();
  });
  after(() => ca.remove());

  test('serves https and wss on the one port to clients that trust the CA, and nothing to those that do not', async () => {
    const cert = issueCert(ca);
    const server = await startServer({ dev: true, tls: { certFile: cert.certFile, keyFile: cert.keyFile } });
    const agent = new Agent({ connect: { ca: ca.cert } });
    try {
      assert.match(server.url(), /^https:\/\/127\.0\.0\.1:\d+$/);
      const res = await undiciFetch(`${server.url()}/health`, { dispatcher: agent });
      assert.equal(res.status, 200);
      assert.equal(((await res.json()) as { status: string }).status, 'ok');
      // Without the CA the handshake fails: the certificate is really verified.
      await assert.rejects(fetch(`${server.url()}/health`));
      const ws = new WebSocket(wsUrl(server), { ca: ca.cert });
      const reply = await new Promise<any>((resolve, reject) => {
        ws.once('open', () => ws.send(JSON.stringify({ id: 1, cmd: 'connect', user: 'alice' })));
        ws.once('message', (d) => resolve(JSON.parse(String(d))));
        ws.once('error', reject);
      });
      assert.equal(reply.id, 1);
      assert.equal(reply.result.user, 'alice');
      ws.close();
      // Plain HTTP on the TLS port is not served.
      await assert.rejects(fetch(`http://127.0.0.1:${server.address().port}/health`));
    } finally {
      await agent.close();
      await server.close();
    }
  });

  test('picks up a renewed certificate when its files change, without a restart', async () => {
    const first = issueCert(ca);
    const live = issueCert(ca, 'live');
    copyFileSync(first.certFile, live.certFile);
    copyFileSync(first.keyFile, live.keyFile);
    const server = await startServer({ tls: { certFile: live.certFile, keyFile: live.keyFile, watchIntervalMs: 50 } });
    try {
      assert.equal(await servedSerial(server, ca.cert), first.serial);
      const renewed = issueCert(ca);
      copyFileSync(renewed.keyFile, live.keyFile);
      copyFileSync(renewed.certFile, live.certFile);
      const deadline = Date.now() + 5_000;
      let serial = '';
      while (Date.now() < deadline && (serial = await servedSerial(server, ca.cert)) !== renewed.serial) await sleep(50);
      assert.equal(serial, renewed.serial);
    } finally {
      await server.close();
    }
  });

  test('reloads on SIGHUP, and keeps the working certificate when the new files are broken', async () => {
    const first = issueCert(ca);
    const dir = ca.dir;
    const certFile = join(dir, 'hup.pem');
    const keyFile = join(dir, 'hup.key');
    copyFileSync(first.certFile, certFile);
    copyFileSync(first.keyFile, keyFile);
    // A long watch interval: only the signal can cause the reload seen here.
    const server = await startServer({ tls: { certFile, keyFile, watchIntervalMs: 600_000 } });
    try {
      const next = issueCert(ca);
      copyFileSync(next.certFile, certFile);
      copyFileSync(next.keyFile, keyFile);
      assert.equal(await servedSerial(server, ca.cert), first.serial, 'nothing reloads before the signal');
      process.kill(process.pid, 'SIGHUP');
      const deadline = Date.now() + 3_000;
      let serial = '';
      while (Date.now() < deadline && (serial = await servedSerial(server, ca.cert)) !== next.serial) await sleep(20);
      assert.equal(serial, next.serial);
      // A key that does not match the certificate: refused, the previous pair keeps serving.
      copyFileSync(first.keyFile, keyFile);
      assert.equal(server.reloadTls(), false);
      writeFileSync(certFile, 'not a certificate');
      assert.equal(server.reloadTls(), false);
      assert.equal(await servedSerial(server, ca.cert), next.serial);
    } finally {
      await server.close();
    }
  });

  test('refuses to start with a missing key file or only one of the pair', async () => {
    const cert = issueCert(ca);
    await assert.rejects(startServer({ tls: { certFile: cert.certFile, keyFile: join(ca.dir, 'absent.key') } }), /cannot load the TLS certificate/);
    await assert.rejects(startServer({ tls: { certFile: cert.certFile } }), /give both tls.certFile and tls.keyFile/);
  });
});
