/**
 * `herald dispatch` over live nodes: nodes heartbeat into the Redis registry, the dispatcher
 * answers with a primary and backups among them, stops assigning a node once it drains or
 * shuts down (SIGTERM) and within one TTL of its death (SIGKILL); a client of a killed node
 * resumes on another with nothing lost.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { DisconnectCode } from '../../src/protocol/codes.js';
import { WsClient } from '../helpers/clients.js';
import { PubLog, sdkClient } from '../helpers/sdk.js';
import { apiPublish, NodeProcess, useNodes } from './nodes.js';

interface Answer {
  status: number;
  body: { primary?: string; backups?: string[]; nodes?: number; code?: string };
}

async function dispatch(d: NodeProcess, user: string): Promise<Answer> {
  const res = await fetch(`${d.url}/dispatch?user=${encodeURIComponent(user)}`);
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

async function eventually(what: string, cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A user whose primary is `node`. */
async function userOn(d: NodeProcess, node: NodeProcess): Promise<string> {
  for (let i = 0; i < 500; i++) if ((await dispatch(d, `u${i}`)).body.primary === node.url) return `u${i}`;
  throw new Error(`no user maps to ${node.url}`);
}

void describe('herald dispatch', { timeout: 400_000 }, () => {
  // --dev: the SDK client of the failover test connects as a bare user name.
  const fast = ['--dev', '--cluster.heartbeat-ms', '300', '--cluster.drain-window-ms', '300'];
  const cluster = useNodes<WsClient>({ tag: 'dispatch', count: 3, args: fast, dispatcher: true, stopSignal: 'SIGKILL', startupMs: 240_000 });

  void test('answers a live primary and the other nodes as backups, stable per user, spread over users', async () => {
    const { a, b, dispatcher: d } = cluster;
    const c = cluster.nodes[2]!;
    const urls = [a.url, b.url, c.url].sort();
    const first = await dispatch(d, 'alice');
    assert.equal(first.status, 200);
    assert.equal(first.body.nodes, 3);
    assert.deepEqual([first.body.primary!, ...first.body.backups!].sort(), urls);
    assert.deepEqual(await dispatch(d, 'alice'), first);
    const primaries = new Set<string>();
    for (let i = 0; i < 60; i++) primaries.add((await dispatch(d, `user-${i}`)).body.primary!);
    assert.deepEqual([...primaries].sort(), urls);
    assert.equal((await fetch(`${d.url}/dispatch`)).status, 400);
  });

  void test('the dispatcher serves /metrics: answers by outcome, live targets, process metrics', async () => {
    const { dispatcher: d } = cluster;
    const text = await (await fetch(`${d.url}/metrics`)).text();
    assert.match(text, /^herald_dispatch_requests_total\{outcome="ok"\} [1-9]/m);
    assert.match(text, /^herald_dispatch_requests_total\{outcome="HERALD_ERR_BAD_REQUEST"\} [1-9]/m);
    assert.match(text, /^herald_dispatch_live_targets 3$/m);
    assert.match(text, /^process_cpu_user_seconds_total /m);
  });

  void test('POST /api/drain: the node is no longer assigned and its clients are told to reconnect through the dispatcher', async () => {
    const { clients, dispatcher: d } = cluster;
    const c = cluster.nodes[2]!;
    const user = await userOn(d, c);
    const client = await WsClient.connected(c.wsUrl);
    clients.push(client);
    const res = await fetch(`${c.url}/api/drain`, { method: 'POST' });
    assert.equal(res.status, 200);
    assert.equal((await client.closed).code, DisconnectCode.RECONNECT);
    await eventually(
      'C no longer assigned',
      async () => {
        const ans = await dispatch(d, user);
        return ans.body.primary !== c.url && !ans.body.backups!.includes(c.url);
      },
      3_000,
    );
    await c.stop('SIGTERM');
  });

  void test('failover: a client of a killed node resumes on another node from its position with nothing lost, within 10 s', async () => {
    const { a, b, clients, dispatcher: d } = cluster;
    const ch = `failover-${Date.now()}`;
    const user = await userOn(d, a);
    const onA = await WsClient.connected(a.wsUrl);
    clients.push(onA);
    await onA.ok('subscribe', { channel: ch });
    // The same user through the SDK and the dispatcher: it asks the dispatcher once, and after the
    // kill goes straight to the next node of that answer (where the dispatcher would send it).
    let dispatches = 0;
    const fetchCounted: typeof fetch = (input, init) => {
      dispatches++;
      return fetch(input, init);
    };
    const sdk = sdkClient('', 'websocket', { url: undefined, dispatcher: d.url, user, fetch: fetchCounted });
    const sdkSub = sdk.subscribe(ch);
    const sdkLog = new PubLog(sdkSub);
    const sdkEvents: Array<{ resumed: boolean; recovered: boolean }> = [];
    sdkSub.on('subscribed', (e) => sdkEvents.push({ resumed: e.resumed, recovered: e.recovered }));
    await sdk.connect();
    await sdkSub.ready();
    assert.equal(sdk.info?.node, a.url);
    await apiPublish(b, ch, 'one');
    const one = await onA.nextPub(ch);
    await sdkLog.count(1);
    const killedAt = Date.now();
    await a.stop('SIGKILL');
    await onA.closed;
    // Published while the client is away.
    await apiPublish(b, ch, 'two');
    await apiPublish(b, ch, 'three');
    // The client goes back to the dispatcher, tries the primary, then the backups.
    const ans = await dispatch(d, user);
    let resumed: WsClient | undefined;
    for (const url of [ans.body.primary!, ...ans.body.backups!]) {
      try {
        resumed = await WsClient.connected(`${url.replace('http', 'ws')}/connection/websocket`);
        break;
      } catch {
        // dead node: next one
      }
    }
    assert.ok(resumed, 'some node accepted the client');
    clients.push(resumed);
    const sub = await resumed.ok('subscribe', { channel: ch, since: `${one.epoch}:${one.offset}` });
    assert.equal(sub.recovered, true);
    assert.deepEqual(
      sub.publications.map((p: { data: string }) => p.data),
      ['two', 'three'],
    );
    assert.ok(Date.now() - killedAt < 10_000, `back within 10 s (took ${Date.now() - killedAt} ms)`);
    try {
      await sdkLog.count(3);
      assert.deepEqual(sdkLog.data, ['one', 'two', 'three']);
      assert.deepEqual(sdkEvents, [
        { resumed: false, recovered: true },
        { resumed: true, recovered: true },
      ]);
      assert.equal(sdk.info?.node, ans.body.primary === a.url ? ans.body.backups![0] : ans.body.primary);
      assert.equal(dispatches, 1);
    } finally {
      sdk.disconnect();
    }
    await eventually('A expired from the registry', async () => (await dispatch(d, user)).body.primary !== a.url, 5_000);
  });

  void test('a node shutting down (SIGTERM) is withdrawn at once; then no node is live: 503', async () => {
    const { b, dispatcher: d } = cluster;
    const user = 'last-user';
    await eventually('only B left', async () => (await dispatch(d, user)).body.nodes === 1, 5_000);
    await b.stop('SIGTERM');
    // "At once": within the dispatcher's 500 ms cache of the registry, long before the 0.9 s TTL.
    await eventually('B withdrawn', async () => (await dispatch(d, user)).status === 503, 800);
    const ans = await dispatch(d, user);
    assert.equal(ans.status, 503);
    assert.equal(ans.body.code, 'HERALD_ERR_UNAVAILABLE');
  });
});
