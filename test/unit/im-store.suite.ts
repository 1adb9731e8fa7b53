/**
 * The IM store suite: every ImStore engine must pass it. Call `imStoreSuite(name, factory)` from
 * a test file; `factory` returns a fresh, empty, unopened store (own file, schema or key prefix).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { ImStore } from '../../src/core/im/store.js';

/** Run the suite over stores made by `factory`. */
export function imStoreSuite(name: string, factory: () => Promise<ImStore>): void {
  describe(`IM store: ${name}`, () => {
    let store: ImStore;
    beforeEach(async () => {
      store = await factory();
      await store.open();
      for (const u of ['alice', 'bob', 'carol']) await store.upsertUser(u, u.toUpperCase());
    });
    afterEach(async () => {
      await store.close();
    });

    const sendDirect = async (from: string, to: string, text: string, clientId?: string) => {
      const id = from < to ? `d:${from}:${to}` : `d:${to}:${from}`;
      await store.ensureDirect(id, from, to);
      return store.append({ conversation: id, sender: from, clientId, kind: 'message', payload: JSON.stringify(text), recipients: [from, to] });
    };

    it('knows registered users and omits unknown ones', async () => {
      const users = await store.users(['alice', 'nobody', 'bob']);
      assert.deepEqual(users.map((u) => u.id).sort(), ['alice', 'bob']);
      assert.equal(users.find((u) => u.id === 'alice')?.name, 'ALICE');
    });

    it('gives gap-free conversation seqs and per-user inbox seqs in commit order', async () => {
      const r1 = await sendDirect('alice', 'bob', 'one');
      const r2 = await sendDirect('bob', 'alice', 'two');
      const r3 = await sendDirect('alice', 'carol', 'three');
      assert.deepEqual([r1.message.seq, r2.message.seq, r3.message.seq], [1, 2, 1]);
      assert.deepEqual(r1.inbox, [
        { user: 'alice', seq: 1 },
        { user: 'bob', seq: 1 },
      ]);
      assert.deepEqual(r3.inbox, [
        { user: 'alice', seq: 3 },
        { user: 'carol', seq: 1 },
      ]);
      const inbox = await store.inbox('alice', 0, 10);
      assert.deepEqual(
        inbox.map((e) => [e.seq, JSON.parse(e.message.payload)]),
        [
          [1, 'one'],
          [2, 'two'],
          [3, 'three'],
        ],
      );
      assert.deepEqual(
        (await store.inbox('alice', 1, 1)).map((e) => e.seq),
        [2],
      );
    });

    it('returns the original entry for a repeated client id and writes nothing', async () => {
      const first = await sendDirect('alice', 'bob', 'hi', 'c1');
      const again = await sendDirect('alice', 'bob', 'hi', 'c1');
      assert.equal(again.duplicate, true);
      assert.equal(again.message.id, first.message.id);
      assert.equal(again.message.seq, first.message.seq);
      assert.deepEqual(await store.cursor('bob'), { head: 1, acked: 0 });
      const other = await sendDirect('bob', 'alice', 'hi', 'c1');
      assert.equal(other.duplicate, false, 'client ids are per sender');
    });

    it('commits concurrent appends with distinct seqs and lets a failing one fail alone', async () => {
      await store.ensureDirect('d:alice:bob', 'alice', 'bob');
      const results = await Promise.allSettled([
        ...Array.from({ length: 50 }, (_, i) =>
          store.append({ conversation: 'd:alice:bob', sender: 'alice', clientId: `k${i}`, kind: 'message', payload: `${i}`, recipients: ['alice', 'bob'] }),
        ),
        store.append({ conversation: 'd:alice:bob', sender: 'alice', kind: 'message', payload: '1', recipients: ['alice', 'ghost'] }),
        store.append({ conversation: 'nope', sender: 'alice', kind: 'message', payload: '1', recipients: ['alice'] }),
      ]);
      const ok = results.filter((r) => r.status === 'fulfilled');
      assert.equal(ok.length, 50);
      const seqs = ok.map((r) => (r as PromiseFulfilledResult<{ message: { seq: number } }>).value.message.seq).sort((a, b) => a - b);
      assert.deepEqual(
        seqs,
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      assert.equal((await store.conversation('d:alice:bob'))?.seq, 50);
      assert.deepEqual(await store.cursor('bob'), { head: 50, acked: 0 });
    });

    it('moves the ack cursor forward only and reports delivered conversation seqs', async () => {
      await sendDirect('alice', 'bob', 'a');
      await sendDirect('alice', 'bob', 'b');
      await sendDirect('carol', 'bob', 'c');
      const r = await store.ack('bob', 2);
      assert.equal(r.acked, 2);
      assert.deepEqual(r.delivered, [{ conversation: 'd:alice:bob', seq: 2 }]);
      assert.equal((await store.ack('bob', 1)).acked, 2, 'never backwards');
      assert.equal((await store.ack('bob', 99)).acked, 3, 'capped at the head');
      assert.equal((await store.member('d:alice:bob', 'bob'))?.deliveredSeq, 2);
      assert.deepEqual(await store.cursor('bob'), { head: 3, acked: 3 });
    });

    it('pages history both ways and lists conversations with unread counts', async () => {
      for (let i = 1; i <= 5; i++) await sendDirect(i % 2 ? 'alice' : 'bob', i % 2 ? 'bob' : 'alice', `m${i}`);
      assert.deepEqual(
        (await store.history('d:alice:bob', { limit: 2 })).map((m) => m.seq),
        [5, 4],
      );
      assert.deepEqual(
        (await store.history('d:alice:bob', { before: 4, limit: 2 })).map((m) => m.seq),
        [3, 2],
      );
      assert.deepEqual(
        (await store.history('d:alice:bob', { after: 3, limit: 10 })).map((m) => m.seq),
        [4, 5],
      );
      let [conv] = await store.conversations('bob', 10);
      assert.equal(conv?.unread, 3);
      assert.equal(conv?.last?.seq, 5);
      assert.equal(await store.markRead('d:alice:bob', 'bob', 3), 3);
      [conv] = await store.conversations('bob', 10);
      assert.equal(conv?.unread, 1);
      assert.equal(await store.markRead('d:alice:bob', 'bob', 1), 3, 'read cursor never moves back');
    });

    it("applies edit and recall to the author's own messages only", async () => {
      const m = await sendDirect('alice', 'bob', 'orig');
      const conv = m.message.conversation;
      await assert.rejects(
        store.append({ conversation: conv, sender: 'bob', kind: 'edit', payload: '"x"', target: m.message.id, recipients: ['alice', 'bob'] }),
        { code: 'HERALD_ERR_IM_NOT_ALLOWED' },
      );
      const e = await store.append({ conversation: conv, sender: 'alice', kind: 'edit', payload: '"new"', target: m.message.id, recipients: ['alice', 'bob'] });
      assert.equal(e.message.kind, 'edit');
      let stored = await store.message(m.message.id);
      assert.equal(stored?.payload, '"new"');
      assert.ok(stored?.editedAt);
      await assert.rejects(
        store.append({
          conversation: conv,
          sender: 'alice',
          kind: 'recall',
          payload: 'null',
          target: m.message.id,
          recipients: ['alice'],
          notBefore: Date.now() + 1000,
        }),
        { code: 'HERALD_ERR_IM_RECALL_EXPIRED' },
      );
      await store.append({ conversation: conv, sender: 'alice', kind: 'recall', payload: 'null', target: m.message.id, recipients: ['alice', 'bob'] });
      stored = await store.message(m.message.id);
      assert.equal(stored?.recalled, true);
      assert.equal(stored?.payload, 'null');
      await assert.rejects(store.append({ conversation: conv, sender: 'alice', kind: 'recall', payload: 'null', target: 'missing', recipients: ['alice'] }), {
        code: 'HERALD_ERR_IM_UNKNOWN_MESSAGE',
      });
    });

    it('manages group members and roles', async () => {
      const g = await store.createConversation({
        id: 'g:1',
        kind: 'group',
        title: 'T',
        members: [
          { user: 'alice', role: 'owner' },
          { user: 'bob', role: 'member' },
        ],
      });
      assert.equal(g.memberCount, 2);
      await assert.rejects(store.createConversation({ id: 'g:1', kind: 'group', members: [] }), { code: 'HERALD_ERR_CONFLICT' });
      await store.append({ conversation: 'g:1', sender: 'alice', kind: 'message', payload: '1', recipients: ['alice', 'bob'] });
      assert.deepEqual(
        await store.addMembers('g:1', [
          { user: 'carol', role: 'member' },
          { user: 'bob', role: 'member' },
        ]),
        ['carol'],
      );
      const carol = await store.member('g:1', 'carol');
      assert.equal(carol?.readSeq, 1, 'history before joining counts as read');
      assert.equal(await store.setRole('g:1', 'bob', 'admin'), true);
      assert.equal((await store.member('g:1', 'bob'))?.role, 'admin');
      assert.deepEqual(await store.groupsOf('carol'), ['g:1']);
      assert.equal(await store.removeMember('g:1', 'carol'), true);
      assert.equal(await store.removeMember('g:1', 'carol'), false);
      assert.equal((await store.conversation('g:1'))?.memberCount, 2);
      assert.deepEqual(
        (await store.members('g:1')).map((m) => m.user),
        ['alice', 'bob'],
      );
    });

    it('records the seq a member joined at: 0 for the first members, the current seq for later ones', async () => {
      await store.createConversation({ id: 'g:j', kind: 'group', members: [{ user: 'alice', role: 'owner' }] });
      assert.equal((await store.member('g:j', 'alice'))?.joinedSeq, 0);
      for (let i = 0; i < 3; i++) await store.append({ conversation: 'g:j', sender: 'alice', kind: 'message', payload: `${i}`, recipients: ['alice'] });
      await store.addMembers('g:j', [{ user: 'bob', role: 'member' }]);
      const bob = await store.member('g:j', 'bob');
      assert.deepEqual([bob?.joinedSeq, bob?.readSeq, bob?.deliveredSeq], [3, 3, 3]);
      let [conv] = await store.conversations('bob', 10);
      assert.equal(conv?.last, undefined, 'the last message from before joining is not shown');
      await store.append({ conversation: 'g:j', sender: 'alice', kind: 'message', payload: '"new"', recipients: ['alice', 'bob'] });
      [conv] = await store.conversations('bob', 10);
      assert.equal(conv?.last?.seq, 4);
      assert.equal(conv?.unread, 1);
    });

    it('keeps pending invitations: invite skips members and repeats, accept joins at the current seq, decline drops', async () => {
      await store.createConversation({ id: 'g:i', kind: 'group', title: 'T', members: [{ user: 'alice', role: 'owner' }] });
      await store.append({ conversation: 'g:i', sender: 'alice', kind: 'message', payload: '1', recipients: ['alice'] });
      assert.deepEqual((await store.invite('g:i', 'alice', ['bob', 'alice', 'carol', 'bob'])).sort(), ['bob', 'carol']);
      assert.deepEqual(await store.invite('g:i', 'alice', ['bob']), [], 'already invited');
      assert.equal(await store.inviteCount('g:i'), 2);
      const [inv] = await store.invites('bob');
      assert.equal(inv?.conversation, 'g:i');
      assert.equal(inv?.inviter, 'alice');
      assert.equal(typeof inv?.createdAt, 'number');
      assert.equal(await store.member('g:i', 'bob'), undefined, 'an invitee is not a member');
      assert.equal(await store.groupCount('bob'), 0);
      assert.equal(await store.acceptInvite('g:i', 'bob'), true);
      assert.equal(await store.acceptInvite('g:i', 'bob'), false, 'the invitation is used up');
      assert.equal((await store.member('g:i', 'bob'))?.joinedSeq, 1);
      assert.equal((await store.conversation('g:i'))?.memberCount, 2);
      assert.equal(await store.groupCount('bob'), 1);
      assert.deepEqual(await store.invites('bob'), []);
      assert.equal(await store.removeInvite('g:i', 'carol'), true);
      assert.equal(await store.removeInvite('g:i', 'carol'), false);
      assert.equal(await store.acceptInvite('g:i', 'carol'), false, 'declined: nothing to accept');
      await store.invite('g:i', 'alice', ['carol']);
      await store.addMembers('g:i', [{ user: 'carol', role: 'member' }]);
      assert.deepEqual(await store.invites('carol'), [], 'a direct add drops the invitation');
      await assert.rejects(store.invite('g:nope', 'alice', ['bob']), { code: 'HERALD_ERR_IM_UNKNOWN_CONVERSATION' });
    });

    it('lists co-members of small groups only, and mutual contacts', async () => {
      await store.createConversation({
        id: 'g:s',
        kind: 'group',
        members: [
          { user: 'alice', role: 'owner' },
          { user: 'bob', role: 'member' },
        ],
      });
      await store.createConversation({
        id: 'g:l',
        kind: 'group',
        members: [
          { user: 'alice', role: 'owner' },
          { user: 'bob', role: 'member' },
          { user: 'carol', role: 'member' },
        ],
      });
      assert.deepEqual((await store.presencePeers('alice', 3)).sort(), ['bob', 'carol']);
      assert.deepEqual(await store.presencePeers('alice', 2), ['bob'], 'groups above the size are left out');
      assert.deepEqual(await store.presencePeers('carol', 2), []);
      await store.addContact('alice', 'bob');
      await store.addContact('alice', 'carol');
      await store.addContact('bob', 'alice');
      await store.addContact('dave', 'carol');
      await store.addContact('carol', 'dave');
      await store.addContact('erin', 'erin');
      assert.deepEqual(await store.mutualContacts('alice'), ['bob']);
      assert.deepEqual(await store.mutualContacts('carol'), ['dave']);
      // Mutual contacts and small groups' members together, each once, never the user itself.
      assert.deepEqual((await store.presencePeers('alice', 3)).sort(), ['bob', 'carol']);
      assert.deepEqual((await store.presencePeers('carol', 3)).sort(), ['alice', 'bob', 'dave']);
      assert.deepEqual(await store.presencePeers('carol', 2), ['dave'], 'a mutual contact is a peer whatever the groups');
      assert.deepEqual(await store.presencePeers('erin', 3), [], "one is not one's own peer");
      assert.equal(await store.contactCount('alice'), 2);
    });

    it('keeps contacts both ways', async () => {
      await store.addContact('alice', 'bob');
      await store.addContact('alice', 'bob');
      await store.addContact('carol', 'bob');
      assert.deepEqual(await store.contacts('alice'), ['bob']);
      assert.deepEqual(await store.contactOf('bob'), ['alice', 'carol']);
      assert.equal(await store.removeContact('alice', 'bob'), true);
      assert.deepEqual(await store.contacts('alice'), []);
    });
  });
}
