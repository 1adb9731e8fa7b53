// Socket.IO 4.8 peer for the Herald benchmarks: rooms, WebSocket transport only.
//   node bench/peers/socketio-server.js <port> [<redis url> <key prefix>]
// With a Redis URL the server uses @socket.io/redis-adapter (Redis pub/sub, key = the prefix),
// so that several of these processes form one cluster (bench/cluster.js).
// Clients subscribe with an acknowledged event, 42N["subscribe","<room>"] -> 43N[true].
// Backends publish with POST /publish/<room> and a JSON body; the server emits it to the room
// as ["pub", <body>] (one encode for the whole room, as Socket.IO broadcasts do).
import http from 'node:http';
import { Server } from 'socket.io';

const port = Number(process.argv[2] ?? 3000);
const redisUrl = process.argv[3];
const redisKey = process.argv[4] ?? 'socket.io';

const server = http.createServer((req, res) => {
  const m = /^\/publish\/([\w:-]+)$/.exec(req.url ?? '');
  if (req.method !== 'POST' || !m) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let data;
    try {
      data = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      res.writeHead(400).end('bad json');
      return;
    }
    io.to(m[1]).emit('pub', data);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
  });
});

const io = new Server(server, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  connectTimeout: 60_000,
});

let redisClients = [];
if (redisUrl) {
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const { Redis } = await import('ioredis');
  const pubClient = new Redis(redisUrl);
  const subClient = pubClient.duplicate();
  redisClients = [pubClient, subClient];
  io.adapter(createAdapter(pubClient, subClient, { key: redisKey }));
}

io.on('connection', (socket) => {
  socket.on('subscribe', (room, ack) => {
    if (typeof room === 'string') socket.join(room);
    if (typeof ack === 'function') ack(true);
  });
});

server.listen({ port, host: '127.0.0.1', backlog: 4096 }, () => {
  process.stdout.write(`listening ${port}\n`);
});

const stop = () => {
  io.close();
  for (const c of redisClients) c.disconnect();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
