/**
 * The SDK's IM API against a real server on each transport: live delivery, messages sent while
 * the recipient was offline arrive in order after it comes back, acks are sent for the app,
 * retried sends do not duplicate, receipts, typing, presence, groups and contacts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { type HeraldClient, ImClient, type ImEvents, type ImMessageEvent } from '../../clients/js/src/index.js';
import type { HeraldServer } from '../../src/index.js';
import { sdkClient, TRANSPORTS } from '../helpers/sdk.js';
import { startServer, waitFor } from '../helpers/server.js';

let n = 0;
const uniq = (name: string): string => `${name}${process.pid}x${++n}`;

for (const transport of TRANSPORTS) {
  void describe(`SDK IM over ${transport}`, () => {
    let server: HeraldServer;
    let dir: string;
    const clients: HeraldClient[] = [];

    async function im(
      user: string,
    ): Promise<{ im: ImClient; messages: ImMessageEvent[]; events: Array<ImEvents['receipt'] | ImEvents['typing'] | ImEvents['presence']> }> {
      const c = sdkClient(server, transport, { user });
      clients.push(c);
      const client = new ImClient(c, { ackDelayMs: 10 });
      const messages: ImMessageEvent[] = [];
      const events: Array<ImEvents['receipt'] | ImEvents['typing'] | ImEvents['presence']> = [];
      client.on('message', (m) => messages.push(m));
      client.on('receipt', (e) => events.push(e));
      client.on('typing', (e) => events.push(e));
      client.on('presence', (e) => events.push(e));
      await client.start();
      return { im: client, messages, events };
    }

    /** Wait until the server has `user`'s inbox acknowledged up to `seq`. */
    async function ackedBy(user: string, seq: number): Promise<void> {
      const deadline = Date.now() + 3_000;
      while ((await server.engines.imStore.cursor(user)).acked < seq) {
        if (Date.now() > deadline) assert.fail(`inbox of ${user} not acked up to ${seq}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    }

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'herald-sdk-im-'));
      server = await startServer({ dev: true, dataDir: dir, im: { redeliveryTimeoutMs: 300, presenceGraceMs: 100, sendsPerSecond: 1000 } });
    });
    afterEach(() => {
      for (const c of clients.splice(0)) c.disconnect();
    });
    after(async () => {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    });

    void it('delivers a direct message live and acks it for the app', async () => {
      const [a, b] = [uniq('alice'), uniq('bob')];
      const alice = await im(a);
      const bob = await im(b);
      const ack = await alice.im.send({ to: b }, { text: 'hello' });
      assert.equal(ack.duplicate, false);
      await waitFor(() => bob.messages.length === 1, 3_000, 'message');
      assert.deepEqual(bob.messages[0]!.message.data, { text: 'hello' });
      assert.equal(bob.messages[0]!.message.from, a);
      await ackedBy(b, 1);
    });

    void it('delivers messages sent while the recipient was offline, in order, once', async () => {
      const [a, b] = [uniq('alice'), uniq('bob')];
      const alice = await im(a);
      const bob1 = await im(b);
      await alice.im.send({ to: b }, 0);
      await waitFor(() => bob1.messages.length === 1, 3_000, 'first message');
      await ackedBy(b, 1);
      bob1.im.client.disconnect();
      for (let i = 1; i <= 5; i++) await alice.im.send({ to: b }, i);
      const bob2 = await im(b);
      await waitFor(() => bob2.messages.length >= 5, 4_000, 'offline messages');
      await new Promise((r) => setTimeout(r, 400)); // re-deliveries must not show up twice
      assert.deepEqual(
        bob2.messages.map((m) => m.message.data),
        [1, 2, 3, 4, 5],
      );
      assert.ok(bob2.messages.every((m) => m.offline));
    });

    void it('resumes the inbox after the server drops the connection', async () => {
      const [a, b] = [uniq('alice'), uniq('bob')];
      const alice = await im(a);
      const bob = await im(b);
      await alice.im.send({ to: b }, 'one');
      await waitFor(() => bob.messages.length === 1, 3_000, 'first');
      await waitFor(() => server.core.hub.subscriberCount(`inbox:${b}`) > 0, 3_000, 'inbox live');
      for (const conn of server.core.hub.connections()) if (conn.user === b) conn.disconnect(3002, 'drop');
      await alice.im.send({ to: b }, 'two');
      await alice.im.send({ to: b }, 'three');
      await waitFor(() => bob.messages.length >= 3, 5_000, 'resumed');
      assert.deepEqual(
        bob.messages.map((m) => m.message.data),
        ['one', 'two', 'three'],
      );
    });

    void it('returns the original ack for a retried send with the same key', async () => {
      const [a, b] = [uniq('alice'), uniq('bob')];
      const alice = await im(a);
      await im(b);
      const first = await alice.im.send({ to: b }, 'x', { clientId: 'k1' });
      const again = await alice.im.send({ to: b }, 'x', { clientId: 'k1' });
      assert.equal(again.duplicate, true);
      assert.equal(again.id, first.id);
    });

    void it('lists conversations with unread counts, pages history, sends read receipts and typing', async () => {
      const [a, b] = [uniq('alice'), uniq('bob')];
      const alice = await im(a);
      const bob = await im(b);
      for (let i = 1; i <= 3; i++) await alice.im.send({ to: b }, i);
      const convs = await bob.im.conversations();
      assert.equal(convs.length, 1);
      assert.equal(convs[0]!.unread, 3);
      const conv = convs[0]!.id;
      const older = await bob.im.history(conv, { before: 3, limit: 10 });
      assert.deepEqual(
        older.map((m) => m.data),
        [1, 2],
      );
      await bob.im.read(conv, 3);
      await waitFor(() => alice.events.some((e) => 'kind' in e && e.kind === 'read' && e.seq === 3), 3_000, 'read receipt');
      await bob.im.typing(conv);
      await waitFor(() => alice.events.some((e) => !('kind' in e) && !('state' in e) && e.user === b), 3_000, 'typing');
      assert.equal((await bob.im.conversations())[0]!.unread, 0);
    });

    void it('runs a group: create, send to members, members list', async () => {
      const [a, b, c] = [uniq('alice'), uniq('bob'), uniq('carol')];
      const alice = await im(a);
      const bob = await im(b);
      const carol = await im(c);
      // b is a mutual contact and joins at once; c is invited and accepts.
      await alice.im.addContact(b);
      await bob.im.addContact(a);
      const invites: string[] = [];
      carol.im.on('invite', (e) => invites.push(e.group));
      const g = await alice.im.createGroup([b, c], 'team');
      assert.equal(g.memberCount, 2);
      assert.deepEqual(g.invited, [c]);
      await waitFor(() => invites.includes(g.group), 3_000, 'invite event');
      assert.deepEqual(
        (await carol.im.invites()).map((i) => [i.group, i.from]),
        [[g.group, a]],
      );
      assert.equal((await carol.im.acceptInvite(g.group)).memberCount, 3);
      await alice.im.send({ conversation: g.group }, 'hi team');
      const got = (x: typeof bob): boolean => x.messages.some((m) => m.message.data === 'hi team');
      await waitFor(() => got(bob) && got(carol), 3_000, 'group message');
      const members = await bob.im.members(g.group);
      assert.deepEqual(members.map((m) => m.user).sort(), [a, b, c].sort());
    });

    void it('shows contacts with presence and pushes presence changes', async () => {
      const [a, b] = [uniq('alice'), uniq('bob')];
      const alice = await im(a);
      const bob = await im(b);
      await alice.im.addContact(b);
      assert.equal((await alice.im.contacts())[0]!.state, 'offline', 'not shared until bob adds alice back');
      await bob.im.addContact(a);
      // Bob's long-poll session may sit between two polls: read until he shows online (bounded).
      let list = await alice.im.contacts();
      for (let i = 0; i < 60 && list[0]!.state !== 'online'; i++) {
        await new Promise((r) => setTimeout(r, 50));
        list = await alice.im.contacts();
      }
      assert.equal(list[0]!.user, b);
      assert.equal(list[0]!.state, 'online');
      await bob.im.setPresence('busy', 'in a meeting');
      await waitFor(() => alice.events.some((e) => 'state' in e && e.user === b && e.state === 'busy'), 3_000, 'presence push');
      const [p] = await alice.im.getPresence([b]);
      assert.equal(p!.status, 'in a meeting');
    });
  });
}
