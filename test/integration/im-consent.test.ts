/**
 * Consent and privacy in the IM, each attack replayed with real WebSocket clients against a real
 * server: group spam (a stranger putting hundreds of users into hundreds of groups), presence
 * reads and live presence of users who never agreed, telling known users from unknown ones, and
 * new group members reading what was said before they joined.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ImWs } from '../helpers/im-clients.js';
import { useImServer } from '../helpers/im-fixture.js';

const isMessage = (e: any): boolean => e.type === 'message';

describe('IM group spam (default limits)', () => {
  const h = useImServer('im-spam', () => ({ dev: true }));

  test('a stranger creating groups of 199 users as fast as it can: invitations only, no inbox rows, refused past the rate', async () => {
    const [mallory, victim] = h.names('mallory', 'victim');
    const victims = [victim!, ...Array.from({ length: 198 }, (_, i) => `${victim}-${i}`)];
    for (const v of victims) await h.server.im.registerUser(v);
    const watched = await h.connect(victim!);
    const m = await h.connect(mallory!);
    const results: Array<{ ok: boolean; body: any }> = [];
    const started = Date.now();
    for (let i = 0; i < 30; i++) {
      const r = await m.ws.command('im.group.create', { title: `spam ${i}`, members: victims });
      results.push(r.error ? { ok: false, body: r.error } : { ok: true, body: r.result });
    }
    const seconds = (Date.now() - started) / 1000;
    const created = results.filter((r) => r.ok);
    const refused = results.filter((r) => !r.ok);
    // The default rate: a burst of 4, then 2 a second.
    const allowed = 4 + Math.ceil(2 * seconds);
    assert.ok(created.length >= 4 && created.length <= allowed, `${created.length} got through in ${seconds} s, at most ${allowed}`);
    assert.ok(refused.length >= 30 - allowed);
    for (const r of refused) assert.equal(r.body.name, 'HERALD_ERR_TOO_MANY_REQUESTS');
    for (const r of created) {
      assert.equal(r.body.memberCount, 1, 'nobody joined');
      assert.equal(r.body.invited.length, victims.length);
    }
    // Not one inbox row and not one membership for any victim.
    const store = h.server.engines.imStore;
    for (const v of victims) {
      assert.equal((await store.cursor(v)).head, 0);
      assert.equal(await store.groupCount(v), 0);
    }
    // A message into the group reaches no invitee; the invitations did.
    await m.ok('im.send', { conversation: created[0]!.body.group, clientId: 'spam', data: 'buy now' });
    const invite = await watched.event((e) => e.type === 'invite');
    assert.equal(invite.from, mallory);
    assert.equal(await watched.gets(isMessage, 300), false);
    assert.equal((await watched.ok('im.group.invites')).invites.length, created.length);
  });
});

describe('IM consent, presence privacy and history (small caps)', () => {
  const h = useImServer('im-consent', () => ({
    dev: true,
    im: {
      groupOpsPerSecond: 1_000,
      maxGroupsPerUser: 3,
      maxPendingInvites: 2,
      maxContacts: 5,
      maxGroupSize: 5,
      presenceGraceMs: 100,
    },
  }));
  const befriend = async (a: ImWs, b: ImWs): Promise<void> => {
    await a.ok('im.contacts.add', { user: b.user });
    await b.ok('im.contacts.add', { user: a.user });
  };
  const text = (list: any[]): unknown[] => list.filter((x) => x.kind === 'message').map((x) => x.data);

  test('an invitee joins by accepting and reads the group from its join on; earlier history stays hidden', async () => {
    const [alice, bob, carol] = h.names('alice', 'bob', 'carol');
    const [a, b, c] = [await h.connect(alice!), await h.connect(bob!), await h.connect(carol!)];
    await befriend(a, b);
    const g = await a.ok('im.group.create', { title: 'plans', members: [bob, carol] });
    assert.deepEqual([g.memberCount, g.invited], [2, [carol]]);
    for (const t of ['before-1', 'before-2']) await a.ok('im.send', { conversation: g.group, clientId: t, data: t });
    const invite = await c.event((e) => e.type === 'invite');
    assert.deepEqual([invite.group, invite.title, invite.from], [g.group, 'plans', alice]);
    const [listed] = (await c.ok('im.group.invites')).invites;
    assert.deepEqual([listed.group, listed.title, listed.from, typeof listed.time], [g.group, 'plans', alice, 'number']);
    assert.equal((await c.fails('im.history', { conversation: g.group })).name, 'HERALD_ERR_IM_NOT_MEMBER', 'an invitee is no member');
    assert.equal(await c.gets(isMessage, 200), false, 'an invitee gets no group messages');
    assert.equal((await c.ok('im.group.accept', { group: g.group })).memberCount, 3);
    const joined = await a.event((e) => isMessage(e) && e.message.kind === 'member' && e.message.data.action === 'joined');
    assert.equal(joined.message.data.user, carol);
    await a.ok('im.send', { conversation: g.group, clientId: 'after', data: 'after' });
    await c.event((e) => isMessage(e) && e.message.data === 'after');
    // Carol pages back and forth: nothing from before she joined.
    assert.deepEqual(text((await c.ok('im.history', { conversation: g.group })).messages), ['after']);
    assert.deepEqual(text((await c.ok('im.history', { conversation: g.group, after: 0 })).messages), ['after']);
    assert.deepEqual(text((await c.ok('im.history', { conversation: g.group, before: 3 })).messages), []);
    const conv = (await c.ok('im.conversations')).conversations.find((x: any) => x.id === g.group);
    assert.deepEqual([conv.last.data, conv.unread], ['after', 1]);
    // Bob, a first member, reads everything.
    assert.deepEqual(text((await b.ok('im.history', { conversation: g.group, after: 0 })).messages), ['before-1', 'before-2', 'after']);
    // A mutual contact added later joins at once, also from its join on.
    const [dave] = h.names('dave');
    const d = await h.connect(dave!);
    await befriend(a, d);
    assert.deepEqual(await a.ok('im.group.add', { group: g.group, members: [dave] }), { added: [dave], invited: [] });
    assert.deepEqual(text((await d.ok('im.history', { conversation: g.group, after: 0 })).messages), []);
  });

  test('declining drops the invitation; accepting none, a declined one or an unknown group is HERALD_ERR_IM_NO_INVITE', async () => {
    const [alice, bob] = h.names('alice', 'bob');
    const [a, b] = [await h.connect(alice!), await h.connect(bob!)];
    const g = await a.ok('im.group.create', { members: [bob] });
    await b.ok('im.group.decline', { group: g.group });
    assert.deepEqual((await b.ok('im.group.invites')).invites, []);
    assert.equal((await b.fails('im.group.accept', { group: g.group })).name, 'HERALD_ERR_IM_NO_INVITE');
    assert.equal((await b.fails('im.group.decline', { group: g.group })).name, 'HERALD_ERR_IM_NO_INVITE');
    assert.equal((await b.fails('im.group.accept', { group: 'g:nope' })).name, 'HERALD_ERR_IM_NO_INVITE');
    assert.equal(await h.server.engines.imStore.member(g.group, bob!), undefined);
  });

  test('caps: groups per user (create and accept), pending invitations per user, members plus invitations per group, contacts per user', async () => {
    const [alice, bob, carol, dave, erin] = h.names('alice', 'bob', 'carol', 'dave', 'erin');
    const [a, b, c] = [await h.connect(alice!), await h.connect(bob!), await h.connect(carol!)];
    const inviters = [];
    for (const u of h.names('i1', 'i2', 'i3')) inviters.push(await h.connect(u));
    for (const u of [dave, erin]) await h.server.im.registerUser(u!);
    for (let i = 0; i < 3; i++) await a.ok('im.group.create', { members: [] });
    assert.equal((await a.fails('im.group.create', { members: [] })).name, 'HERALD_ERR_IM_TOO_MANY_GROUPS');
    const g = await b.ok('im.group.create', { members: [alice] });
    assert.deepEqual(g.invited, [alice]);
    assert.equal((await a.fails('im.group.accept', { group: g.group })).name, 'HERALD_ERR_IM_TOO_MANY_GROUPS');
    // Carol holds at most two invitations: a third inviter leaves her out.
    await inviters[0]!.ok('im.group.create', { members: [carol] });
    await inviters[1]!.ok('im.group.create', { members: [carol] });
    assert.deepEqual((await inviters[2]!.ok('im.group.create', { members: [carol] })).invited, [], 'left out: she holds two');
    assert.equal((await c.ok('im.group.invites')).invites.length, 2);
    // Five seats: the owner, then invitations count until answered.
    const [x] = h.names('x');
    const xc = await h.connect(x!);
    const big = await xc.ok('im.group.create', { members: [dave, erin] });
    const [f1, f2, f3] = h.names('f1', 'f2', 'f3');
    for (const u of [f1, f2, f3]) await h.server.im.registerUser(u!);
    assert.deepEqual((await xc.ok('im.group.add', { group: big.group, members: [f1, f2] })).invited, [f1, f2]);
    assert.equal((await xc.fails('im.group.add', { group: big.group, members: [f3] })).name, 'HERALD_ERR_IM_GROUP_FULL');
    // Five contacts; re-adding one of them is fine.
    for (let i = 0; i < 5; i++) await c.ok('im.contacts.add', { user: `someone${h.n}-${i}` });
    assert.equal((await c.fails('im.contacts.add', { user: `someone${h.n}-5` })).name, 'HERALD_ERR_IM_TOO_MANY_CONTACTS');
    await c.ok('im.contacts.add', { user: `someone${h.n}-0` });
  });

  test("a stranger reads a busy user's presence exactly as an unknown user's, and adding the user as a contact streams nothing", async () => {
    const [bob, mallory] = h.names('bob', 'mallory');
    const b = await h.connect(bob!);
    await b.ok('im.presence.set', { state: 'busy', status: 'at the clinic' });
    const m = await h.connect(mallory!);
    const ghost = `ghost${h.n}`;
    const read = (await m.ok('im.presence.get', { users: [bob, ghost] })).presence;
    assert.deepEqual(read, [
      { user: bob, state: 'offline' },
      { user: ghost, state: 'offline' },
    ]);
    // Adding a contact answers the same for a real user and a made-up one.
    assert.deepEqual(await m.ok('im.contacts.add', { user: bob }), {});
    assert.deepEqual(await m.ok('im.contacts.add', { user: ghost }), {});
    assert.deepEqual((await m.ok('im.contacts.list')).contacts, [
      { user: bob, state: 'offline' },
      { user: ghost, state: 'offline' },
    ]);
    await b.ok('im.presence.set', { state: 'away', status: 'home' });
    assert.equal(await m.gets((e) => e.type === 'presence', 300), false, 'no live presence without consent');
    // Bob adds mallory back: from then on they share presence.
    await b.ok('im.contacts.add', { user: mallory });
    const ev = await m.event((e) => e.type === 'presence' && e.user === bob);
    assert.deepEqual([ev.state, ev.status], ['away', 'home']);
    assert.equal((await m.ok('im.presence.get', { users: [bob] })).presence[0].status, 'home');
    // And removing the contact ends it: bob is told mallory is offline to him, and reads her so.
    await m.ok('im.contacts.remove', { user: bob });
    const gone = await b.event((e) => e.type === 'presence' && e.user === mallory && e.state === 'offline');
    assert.deepEqual(gone, { type: 'presence', user: mallory, state: 'offline' });
    assert.deepEqual((await b.ok('im.presence.get', { users: [mallory] })).presence, [{ user: mallory, state: 'offline' }]);
  });

  test('an invitation into a group shares no presence until it is accepted', async () => {
    const [bob, mallory] = h.names('bob', 'mallory');
    const b = await h.connect(bob!);
    const m = await h.connect(mallory!);
    const g = await m.ok('im.group.create', { members: [bob] });
    await b.ok('im.presence.set', { state: 'busy', status: 'secret' });
    assert.equal(await m.gets((e) => e.type === 'presence', 300), false);
    assert.deepEqual((await m.ok('im.presence.get', { users: [bob] })).presence, [{ user: bob, state: 'offline' }]);
    // Accepting makes them peers: each is pushed the other's presence at once, then its changes.
    await b.ok('im.group.accept', { group: g.group });
    const now = await m.event((e) => e.type === 'presence' && e.user === bob);
    assert.deepEqual([now.state, now.status], ['busy', 'secret']);
    assert.equal((await b.event((e) => e.type === 'presence' && e.user === mallory)).state, 'online');
    await b.ok('im.presence.set', { state: 'online' });
    assert.equal((await m.event((e) => e.type === 'presence' && e.user === bob)).state, 'online');
  });

  test('the server API still adds members directly and reads presence unmasked', async () => {
    const [owner, member] = h.names('owner', 'member');
    const api = async (method: string, path: string, body?: unknown): Promise<any> => {
      const res = await fetch(`${h.server.url()}/api/${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      assert.equal(res.status, 200, `${method} ${path}`);
      return res.json();
    };
    const mc = await h.connect(member!);
    await mc.ok('im.presence.set', { state: 'busy', status: 'api sees it' });
    const g = await api('POST', 'im/groups', { owner, members: [member] });
    assert.equal(g.memberCount, 2);
    assert.equal((await h.server.engines.imStore.member(g.group, member!))?.role, 'member');
    const p = await api('POST', 'presence', { users: [member] });
    assert.deepEqual([p.presence[0].state, p.presence[0].status], ['busy', 'api sees it']);
  });
});
