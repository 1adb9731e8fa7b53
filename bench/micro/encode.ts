/**
 * Micro benchmark: the CPU cost of fanning one publication out to local subscribers, without
 * sockets. Compares a naive loop (serialize and frame per subscriber, as a plain `ws` send loop
 * does) with Herald's path (encode and frame once per node, then the hub's per-subscriber
 * bookkeeping: channel Set walk, SubscriptionState.accept, memoised frame lookup).
 *
 *   node --import tsx bench/micro/encode.ts [subscribers=10000] [publications=200]
 *
 * Never part of `npm test`. Reports ns per delivery; the macro bench (bench/run.js) measures
 * the real thing including syscalls.
 */
import { Outgoing, jsonInput, type Publication } from '../../src/core/publication.js';
import { SubscriptionState } from '../../src/core/subscription.js';
import { pubFrame } from '../../src/fronts/native/encode.js';
import { textFrame } from '../../src/transports/websocket.js';

const subscribers = Number(process.argv[2] ?? 10_000);
const publications = Number(process.argv[3] ?? 200);

interface Sink {
  state: SubscriptionState;
  bytes: number;
}

const sinks = new Set<Sink>();
for (let i = 0; i < subscribers; i++) {
  const state = new SubscriptionState('bench');
  state.settle({ epoch: 'e', offset: 0 });
  sinks.add({ state, bytes: 0 });
}

function makePub(offset: number): Publication {
  const data = { bt: Date.now() * 1000, seq: offset, pad: 'x'.repeat(64) };
  return { ...jsonInput(data), channel: 'bench', epoch: 'e', offset, time: Date.now() };
}

function naive(pub: Publication): void {
  const data = JSON.parse(pub.payload.toString('utf8')) as unknown;
  for (const s of sinks) {
    const frame = textFrame(JSON.stringify({ type: 'pub', channel: pub.channel, epoch: pub.epoch, offset: pub.offset, time: pub.time, data }));
    s.bytes += frame.length;
  }
}

const wsFrame = (pub: Publication): Buffer => textFrame(pubFrame(pub));
function encodeOnce(pub: Publication): void {
  const out = new Outgoing(pub);
  for (const s of sinks) {
    if (!s.state.accept(out)) continue;
    s.bytes += out.encoded(wsFrame).length;
  }
}

function run(name: string, fn: (pub: Publication) => void, offset0: number): number {
  for (let i = 0; i < 5; i++) fn(makePub(offset0 + i)); // warm-up
  const pubs = Array.from({ length: publications }, (_, i) => makePub(offset0 + 10 + i));
  const t0 = process.hrtime.bigint();
  for (const p of pubs) fn(p);
  const ns = Number(process.hrtime.bigint() - t0);
  const perDelivery = ns / (publications * subscribers);
  console.log(`${name.padEnd(36)} ${perDelivery.toFixed(1).padStart(7)} ns/delivery  ${(1e9 / perDelivery / 1e6).toFixed(2)} M deliveries/s (CPU only)`);
  return perDelivery;
}

console.log(`fan-out of ${publications} publications to ${subscribers} local subscribers, Node ${process.version}`);
const a = run('naive (serialize + frame per sub)', naive, 1_000);
const b = run('encode once, write many (Herald)', encodeOnce, 10_000);
console.log(`speed-up: ${(a / b).toFixed(1)}×`);
