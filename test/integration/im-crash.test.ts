/**
 * Durability: a server process killed with SIGKILL and restarted on the same SQLite file keeps
 * every acknowledged message, and recipients still receive them (sync and re-delivery).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ImWs } from '../helpers/im-clients.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/im-server.ts', import.meta.url));

/** Start the fixture server in a child process; resolves with the process and its base URL. */
function startChild(db: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, db], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    // Generous: tsx compiles the server at start, and the machine may be busy.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('child server did not start'));
    }, 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1]! });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`child exited early with ${code}`));
    });
  });
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

describe('IM durability across a SIGKILL', () => {
  const dir = mkdtempSync(join(tmpdir(), 'herald-im-crash-'));
  const children: ChildProcess[] = [];
  const clients: ImWs[] = [];
  after(async () => {
    for (const c of clients) c.kill();
    for (const ch of children) {
      ch.kill('SIGKILL');
      await killed(ch);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('every acked message survives a SIGKILL of the server and reaches the recipient after the restart', async () => {
    const db = join(dir, 'herald.db');
    const first = await startChild(db);
    children.push(first.child);
    const ws1 = `${first.url.replace('http', 'ws')}/connection/websocket`;
    const bob0 = await ImWs.connect(ws1, 'bob');
    clients.push(bob0);
    await bob0.ok('im.sync');
    bob0.kill(); // bob goes offline before anything is sent
    const alice = await ImWs.connect(ws1, 'alice');
    clients.push(alice);
    // 60 sends in flight at once (group commit), plus 40 one by one.
    const acks = await Promise.all(Array.from({ length: 60 }, (_, i) => alice.ok('im.send', { to: 'bob', clientId: `c${i}`, data: { i } })));
    for (let i = 60; i < 100; i++) acks.push(await alice.ok('im.send', { to: 'bob', clientId: `c${i}`, data: { i } }));
    // More sends fired right before the kill: their acks may or may not arrive.
    for (let i = 100; i < 120; i++) alice.ws.send({ id: 10_000 + i, cmd: 'im.send', to: 'bob', clientId: `c${i}`, data: { i } });
    first.child.kill('SIGKILL');
    await killed(first.child);
    alice.kill();

    const second = await startChild(db);
    children.push(second.child);
    const ws2 = `${second.url.replace('http', 'ws')}/connection/websocket`;
    const bob = await ImWs.connect(ws2, 'bob');
    clients.push(bob);
    // Re-delivery on reconnect: the first unacked message is pushed without bob asking.
    const pushed = await bob.message(1, 5_000);
    assert.equal(pushed.redelivered, true);
    const got = [];
    let after = 0;
    for (;;) {
      const page = await bob.ok('im.sync', { after, limit: 500 });
      got.push(...page.messages);
      if (!page.more) break;
      after = page.messages.at(-1).seq;
    }
    assert.deepEqual(
      got.map((m) => m.seq),
      Array.from({ length: got.length }, (_, i) => i + 1),
      'gap-free inbox',
    );
    const stored = new Map(got.map((m) => [m.message.id, m]));
    for (const ack of acks) {
      const m = stored.get(ack.id);
      assert.ok(m, `acked message ${ack.id} (conversation seq ${ack.seq}) survived`);
      assert.equal(m.message.seq, ack.seq);
      assert.equal(m.message.time, ack.time);
    }
    assert.ok(got.length >= 100 && got.length <= 120);
    // Idempotency survives the restart too.
    const alice2 = await ImWs.connect(ws2, 'alice');
    clients.push(alice2);
    const retry = await alice2.ok('im.send', { to: 'bob', clientId: 'c7', data: { i: 7 } });
    assert.equal(retry.duplicate, true);
    assert.equal(retry.id, acks[7]!.id);
    await bob.close();
    await alice2.close();
  });
});
