/**
 * IM groups (membership, roles, events, large-group timeline reads), typing, presence and
 * contacts with several real WebSocket clients. Group owners add their mutual contacts directly
 * (`befriend`); invitations, caps and presence privacy are in im-consent.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImWs } from '../helpers/im-clients.js';
import { useImServer } from '../helpers/im-fixture.js';

describe('IM groups, presence and contacts', () => {
  const im = useImServer('im-groups', () => ({
    dev: true,
    im: { largeGroupThreshold: 4, maxGroupSize: 10, presenceGraceMs: 100, redeliveryTimeoutMs: 5_000 },
  }));
  const { names, connect } = im;
  /** Make `owner` and each of `others` mutual contacts (so `owner` adds them to groups directly). */
  const befriend = async (owner: ImWs, ...others: ImWs[]): Promise<void> => {
    for (const o of others) {
      await owner.ok('im.contacts.add', { user: o.user });
      await o.ok('im.contacts.add', { user: owner.user });
    }
  };
  const memberEvent = (action: string) => (e: any) => e.type === 'message' && e.message.kind === 'member' && e.message.data.action === action;

  test('a group is created with its owner; members get the created event and every message', async () => {
    const [alice, bob, carol] = names('alice', 'bob', 'carol');
    const [a, b, c] = [await connect(alice!), await connect(bob!), await connect(carol!)];
    await befriend(a, b, c);
    const g = await a.ok('im.group.create', { title: 'Team', members: [bob, carol] });
    assert.deepEqual(g.invited, []);
    assert.match(g.group, /^g:/);
    assert.equal(g.memberCount, 3);
    for (const x of [a, b, c]) {
      const ev = await x.event(memberEvent('created'));
      assert.deepEqual(ev.message.data.members, [alice, bob, carol]);
      assert.equal(ev.message.from, alice);
    }
    const ack = await b.ok('im.send', { conversation: g.group, clientId: 'g1', data: 'hi team' });
    assert.equal(ack.seq, 2);
    for (const x of [a, b, c]) {
      const ev = await x.event((e) => e.type === 'message' && e.message.kind === 'message');
      assert.equal(ev.message.id, ack.id);
      assert.equal(ev.message.from, bob);
    }
    const members = await c.ok('im.group.members', { group: g.group });
    assert.deepEqual(
      members.members.map((m: any) => [m.user, m.role]),
      [
        [alice, 'owner'],
        [bob, 'member'],
        [carol, 'member'],
      ],
    );
  });

  test('owners and admins add and remove members; members cannot; removed members stop receiving', async () => {
    const [alice, bob, carol, dave] = names('alice', 'bob', 'carol', 'dave');
    const [a, b, c, d] = [await connect(alice!), await connect(bob!), await connect(carol!), await connect(dave!)];
    await befriend(a, b);
    await befriend(b, c, d);
    const g = await a.ok('im.group.create', { members: [bob] });
    assert.equal((await b.fails('im.group.add', { group: g.group, members: [carol] })).name, 'HERALD_ERR_IM_NOT_ALLOWED');
    await a.ok('im.group.role', { group: g.group, user: bob, role: 'admin' });
    assert.deepEqual((await b.ok('im.group.add', { group: g.group, members: [carol, dave] })).added, [carol, dave]);
    const added = await d.event(memberEvent('added'));
    assert.deepEqual(added.message.data.users, [carol, dave]);
    assert.equal((await b.fails('im.group.remove', { group: g.group, user: alice })).name, 'HERALD_ERR_IM_NOT_ALLOWED');
    await b.ok('im.group.remove', { group: g.group, user: carol });
    const removed = await c.event(memberEvent('removed'));
    assert.equal(removed.message.data.user, carol);
    assert.equal((await c.fails('im.send', { conversation: g.group, clientId: 'c', data: 'still here?' })).name, 'HERALD_ERR_IM_NOT_MEMBER');
    await a.ok('im.send', { conversation: g.group, clientId: 'after', data: 'without carol' });
    await d.event((e) => e.type === 'message' && e.message.data === 'without carol');
    assert.equal(await c.gets((e) => e.type === 'message' && e.message.data === 'without carol', 200), false);
  });

  test('leaving a group tells the members; an owner who leaves hands ownership on', async () => {
    const [alice, bob, carol] = names('alice', 'bob', 'carol');
    const [a, b, c] = [await connect(alice!), await connect(bob!), await connect(carol!)];
    await befriend(a, b, c);
    const g = await a.ok('im.group.create', { members: [bob, carol] });
    await a.ok('im.group.role', { group: g.group, user: carol, role: 'admin' });
    await a.ok('im.group.leave', { group: g.group });
    const left = await b.event(memberEvent('left'));
    assert.equal(left.message.data.user, alice);
    const members = await b.ok('im.group.members', { group: g.group });
    assert.deepEqual(
      members.members.map((m: any) => [m.user, m.role]),
      [
        [bob, 'member'],
        [carol, 'owner'],
      ],
    );
    assert.equal((await a.fails('im.group.members', { group: g.group })).name, 'HERALD_ERR_IM_NOT_MEMBER');
  });

  test('large groups are read from the group timeline: live pushes without inbox seq, sync lists them, a group ack clears them', async () => {
    const [alice, bob, carol, dave, erin] = names('alice', 'bob', 'carol', 'dave', 'erin');
    const [a, b] = [await connect(alice!), await connect(bob!)];
    const rest = [];
    for (const u of [carol, dave, erin]) rest.push(await connect(u!));
    await befriend(a, b, ...rest);
    const g = await a.ok('im.group.create', { title: 'Big', members: [bob, carol, dave, erin] });
    const headBefore = (await im.server.engines.imStore.cursor(bob!)).head;
    const ack = await a.ok('im.send', { conversation: g.group, clientId: 'big1', data: 'to everyone' });
    const live = await b.event((e) => e.type === 'message' && e.message.id === ack.id);
    assert.equal(live.seq, undefined, 'no inbox seq: not copied into the inbox');
    assert.equal((await im.server.engines.imStore.cursor(bob!)).head, headBefore);
    const sync = await b.ok('im.sync', {});
    const entry = sync.groups.find((x: any) => x.conversation === g.group);
    assert.equal(entry.seq, ack.seq);
    const page = await b.ok('im.history', { conversation: g.group, after: entry.deliveredSeq });
    assert.equal(page.messages.at(-1).id, ack.id);
    await b.ok('im.ack', { conversation: g.group, seq: entry.seq });
    assert.equal(
      (await b.ok('im.sync', {})).groups.find((x: any) => x.conversation === g.group),
      undefined,
    );
  });

  test('typing is pushed to the other members only', async () => {
    const [alice, bob, carol] = names('alice', 'bob', 'carol');
    const [a, b, c] = [await connect(alice!), await connect(bob!), await connect(carol!)];
    await befriend(a, b, c);
    const g = await a.ok('im.group.create', { members: [bob, carol] });
    await a.ok('im.typing', { conversation: g.group });
    for (const x of [b, c]) assert.deepEqual(await x.event((e) => e.type === 'typing'), { type: 'typing', conversation: g.group, user: alice });
    assert.equal(await a.gets((e) => e.type === 'typing', 150), false);
  });

  test('mutual contacts see presence: online once both added, chosen state and status, offline with last-seen after the grace period', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await connect(alice!);
    await im.server.im.registerUser(bob!); // known, never connected
    await a.ok('im.contacts.add', { user: bob });
    assert.deepEqual(
      (await a.ok('im.contacts.list')).contacts.map((c: any) => c.user),
      [bob],
    );
    const b = await connect(bob!);
    await b.ok('im.contacts.add', { user: alice });
    let ev = await a.event((e) => e.type === 'presence' && e.user === bob && e.state === 'online', 2_000);
    assert.equal(typeof ev.lastSeen, 'number');
    await b.ok('im.presence.set', { state: 'busy', status: 'in a meeting' });
    ev = await a.event((e) => e.type === 'presence' && e.state === 'busy');
    assert.equal(ev.status, 'in a meeting');
    const got = await a.ok('im.presence.get', { users: [bob, `ghost${im.n}`] });
    assert.deepEqual(
      got.presence.map((p: any) => p.state),
      ['busy', 'offline'],
    );
    b.kill(); // unclean: no goodbye
    ev = await a.event((e) => e.type === 'presence' && e.user === bob && e.state === 'offline', 3_000);
    assert.ok(ev.lastSeen <= Date.now());
    assert.equal((await a.ok('im.contacts.remove', { user: bob })).removed, true);
    assert.deepEqual((await a.ok('im.contacts.list')).contacts, []);
  });

  test("members of a user's groups see its presence changes once the user accepted the invitation", async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await connect(alice!);
    const b = await connect(bob!);
    const g = await a.ok('im.group.create', { members: [bob] });
    assert.deepEqual(g.invited, [bob]);
    const invite = await b.event((e) => e.type === 'invite');
    assert.equal(invite.group, g.group);
    await b.ok('im.group.accept', { group: g.group });
    // Joining shares the current presence at once, then every change.
    assert.equal((await a.event((e) => e.type === 'presence' && e.user === bob)).state, 'online');
    await b.ok('im.presence.set', { state: 'away' });
    const ev = await a.event((e) => e.type === 'presence' && e.user === bob);
    assert.equal(ev.state, 'away');
  });

  test('a reconnect within the grace period does not flap presence', async () => {
    const [alice, bob] = names('alice', 'bob');
    const a = await connect(alice!);
    const b = await connect(bob!);
    await befriend(a, b);
    await a.ok('im.group.create', { members: [b.user] });
    await b.close();
    await connect(bob!);
    assert.equal(await a.gets((e) => e.type === 'presence' && e.user === bob && e.state === 'offline', 300), false);
  });
});
