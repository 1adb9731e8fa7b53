/**
 * Where Herald's answers differ from real Nchan's on purpose (each one is explained in
 * docs/nchan.md, "Differences from Nchan"). A difference is skipped by the header comparison
 * (./transcript.ts) when it matches an entry: `what` is `status` or a lower-case header
 * name; `file`, `test`, `request` and `status` narrow it (absent: any).
 */
export interface IntendedDifference {
  readonly what: string;
  readonly file?: string;
  readonly test?: string;
  /** Requests as transcript.ts describes them, e.g. `GET /pub/{ch} accept=text/json`. */
  readonly request?: RegExp;
  /** Only answers with this status. */
  readonly status?: number;
  readonly reason: string;
}

const UPGRADE = /^GET \S+ .*upgrade=websocket/;

export const INTENDED_DIFFERENCES: readonly IntendedDifference[] = [
  { what: 'server', reason: 'Herald does not name itself nginx (or anything else) in a Server header' },
  { what: 'sec-websocket-extensions', request: UPGRADE, reason: 'no permessage-deflate: a frame is encoded once and written to every subscriber' },
  { what: 'content-length', request: UPGRADE, status: 101, reason: 'a 101 carries no Content-Length (RFC 9110 §8.6); nginx sends 0' },
  { what: 'connection', request: UPGRADE, reason: 'a refused WebSocket handshake closes the connection: the socket has left the HTTP server' },
  {
    what: 'status',
    file: 'publisher',
    test: 'GET after DELETE: Herald answers 404 (Nchan 1.3.6 answers 200 with 0 messages)',
    reason: 'a deleted channel is gone',
  },
  {
    what: 'status',
    file: 'publisher',
    test: 'an empty channel id: Herald answers 400 (Nchan 1.3.6 publishes to channel "")',
    reason: 'an empty channel id is refused',
  },
  {
    what: 'access-control-allow-credentials',
    request: /origin=http:\/\/evil\.example/,
    reason: 'credentials only for an Origin that allowOrigin, allowedOrigins or the node itself names; Nchan sends them to any Origin, refused ones included',
  },
];
