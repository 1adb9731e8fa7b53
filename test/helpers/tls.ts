/**
 * A throw-away certificate authority for TLS tests, made with the `openssl` CLI in a temporary
 * directory at test time (no private key is checked in): a CA and server certificates it signs
 * for 127.0.0.1 and localhost.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A test CA in its own directory. */
export interface TestCa {
  readonly dir: string;
  /** The CA certificate, PEM (give it to clients as their trust root). */
  readonly cert: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Remove the directory. */
  remove(): void;
}

/** A server certificate issued by a TestCa. */
export interface IssuedCert {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  /** Serial number as Node's X509Certificate reports it (upper-case hex). */
  readonly serial: string;
  /** base64 SHA-256 of the public key (SPKI), as Chromium's --ignore-certificate-errors-spki-list takes it. */
  readonly spkiSha256: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Make a CA (EC P-256, valid one day). */
export function makeCa(): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'herald-ca-'));
  openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=Herald test CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return {
    dir,
    cert: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    certFile: join(dir, 'ca.pem'),
    keyFile: join(dir, 'ca.key'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

let issued = 0;

/** Issue a server certificate for 127.0.0.1, ::1 and localhost; files named `<name>.pem` / `<name>.key`. */
export function issueCert(ca: TestCa, name = `server${++issued}`): IssuedCert {
  const { dir } = ca;
  writeFileSync(
    join(dir, `${name}.ext`),
    'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`],
    dir,
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '1',
      '-extfile',
      `${name}.ext`,
    ],
    dir,
  );
  const cert = readFileSync(join(dir, `${name}.pem`), 'utf8');
  const x509 = new X509Certificate(cert);
  const spki = x509.publicKey.export({ type: 'spki', format: 'der' });
  return {
    certFile: join(dir, `${name}.pem`),
    keyFile: join(dir, `${name}.key`),
    cert,
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
    serial: x509.serialNumber,
    spkiSha256: createHash('sha256').update(spki).digest('base64'),
  };
}
