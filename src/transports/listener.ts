/**
 * The node's listening server: plain HTTP, or HTTPS when `tls.certFile` and `tls.keyFile` are
 * set (TLS terminated by Herald on the same port, HTTP/1.1 only, so WebSocket upgrades work as
 * `wss://`). The certificate and key are re-read without a restart when either file changes
 * (polled every `tls.watchIntervalMs`) or on SIGHUP: new handshakes use the new pair,
 * established connections keep the one they negotiated. A pair that does not load (a file
 * half-written, a key that does not match the certificate) is logged and the previous pair
 * stays in service.
 */
import { readFileSync, type Stats, unwatchFile, watchFile } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TlsConfig } from '../core/config.js';
import type { Logger } from '../core/logger.js';

/** A listening server and its TLS state. */
export interface Listener {
  /** The server (an `https.Server` when TLS is on; it is an `http.Server` as well). */
  readonly server: Server;
  /** `https` when TLS is on, else `http`. */
  readonly scheme: 'http' | 'https';
  /**
   * The secure context of the current certificate and key (undefined when TLS is off), for
   * other listeners that upgrade their own sockets (XMPP STARTTLS): it follows every reload.
   */
  secureContext(): SecureContext | undefined;
  /** Re-read the certificate and key now; false (and logged) when they did not load. */
  reload(): boolean;
  /** Stop watching the files and SIGHUP (the server itself is closed by its owner). */
  stop(): void;
}

/** A certificate and its key, as PEM. */
interface KeyPair {
  readonly cert: Buffer;
  readonly key: Buffer;
  /** The secure context made from them. */
  readonly context: SecureContext;
}

/** Read and check a pair: throws when a file is unreadable or the key does not match. */
function loadPair(tls: TlsConfig): KeyPair {
  const pem = { cert: readFileSync(tls.certFile), key: readFileSync(tls.keyFile) };
  return { ...pem, context: createSecureContext(pem) };
}

/**
 * Create the server for `onRequest`: HTTPS when `tls` names a certificate, else HTTP. Throws
 * when the configured certificate or key cannot be loaded (a configuration error).
 */
export function createListener(
  options: ServerOptions,
  tls: TlsConfig,
  logger: Logger,
  onRequest: (req: IncomingMessage, res: ServerResponse) => void,
): Listener {
  if (!tls.certFile)
    return { server: createHttpServer(options, onRequest), scheme: 'http', secureContext: () => undefined, reload: () => false, stop: () => undefined };
  let pair: KeyPair;
  try {
    pair = loadPair(tls);
  } catch (err) {
    throw new Error(`cannot load the TLS certificate and key (tls.certFile, tls.keyFile): ${(err as Error).message}`, { cause: err });
  }
  const server: HttpsServer = createHttpsServer({ ...options, cert: pair.cert, key: pair.key, ALPNProtocols: ['http/1.1'] }, onRequest);
  const reload = (): boolean => {
    try {
      pair = loadPair(tls);
    } catch (err) {
      logger.warn({ err: (err as Error).message, certFile: tls.certFile }, 'TLS certificate not reloaded; the previous one stays in use');
      return false;
    }
    server.setSecureContext({ cert: pair.cert, key: pair.key });
    logger.info({ certFile: tls.certFile }, 'TLS certificate reloaded');
    return true;
  };
  const changed = (curr: Stats, prev: Stats): void => {
    if (curr.mtimeMs !== prev.mtimeMs || curr.size !== prev.size || curr.ino !== prev.ino) reload();
  };
  const watch = { interval: tls.watchIntervalMs, persistent: false };
  watchFile(tls.certFile, watch, changed);
  watchFile(tls.keyFile, watch, changed);
  const onHup = (): void => void reload();
  process.on('SIGHUP', onHup);
  const stop = (): void => {
    unwatchFile(tls.certFile, changed);
    unwatchFile(tls.keyFile, changed);
    process.off('SIGHUP', onHup);
  };
  // https.Server extends tls.Server and carries http.Server's whole interface.
  return { server: server as unknown as Server, scheme: 'https', secureContext: () => pair.context, reload, stop };
}
