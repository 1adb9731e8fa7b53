#!/usr/bin/env node
// The floor of Node's HTTP server for long-poll (bench/http-floor.js): every GET is answered at
// once with a 200 shaped like a long-poll message (~100-byte body carrying the send time in µs,
// Last-Modified, Etag, Vary), with no routing and no subscription. Usage: http-floor.js <port>
import http from 'node:http';

const port = Number(process.argv[2]);
const pad = 'x'.repeat(64);
http
  .createServer({ keepAliveTimeout: 65_000 }, (_req, res) => {
    const body = Buffer.from(`{"bt":${Math.round((performance.timeOrigin + performance.now()) * 1000)},"pad":"${pad}"}`);
    res.writeHead(200, { 'Content-Length': String(body.length), 'Last-Modified': new Date().toUTCString(), Etag: '1', Vary: 'If-None-Match, If-Modified-Since' });
    res.end(body);
  })
  .listen(port, '127.0.0.1');
