// Herald demo chat: plain JS on the SDK bundle. Sign in and out, contacts with presence, 1:1 and
// group conversations, unread counts, typing, read receipts, offline messages, older history by
// pages, edit and recall of one's own messages, reconnect banner. One pane at a time on a phone.
import { HeraldClient, ImClient } from '/sdk/herald-client.js';

const $ = (id) => document.getElementById(id);
/** Messages per history page. */
const PAGE = 50;
const UNKNOWN_USER = 'HERALD_ERR_IM_UNKNOWN_USER';
/** What to tell a user about someone Herald does not know yet. */
const neverSignedIn = (who) =>
  `${who} has never signed in, so Herald does not know them yet. Ask them to open this chat once ` +
  '(or have your backend register them with POST /api/im/users), then try again.';
const state = { me: '', client: null, im: null, convs: new Map(), contacts: new Map(), invites: new Map(), open: null, wasConnected: false };
window.herald = state; // for debugging and the browser tests

// Development mode is announced on the page, not only in the server log.
fetch('/health', { cache: 'no-store' })
  .then((r) => r.json())
  .then((h) => ($('dev-mode').hidden = !h.dev))
  .catch(() => undefined);

const directId = (a, b) => (a < b ? `d:${a}:${b}` : `d:${b}:${a}`);
const peerOf = (id) => {
  if (!id.startsWith('d:')) return undefined;
  const [, a, b] = id.split(':');
  return a === state.me ? b : a;
};
const textOf = (data) => (typeof data === 'string' ? data : data && typeof data.text === 'string' ? data.text : JSON.stringify(data));
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

function conv(id, init = {}) {
  let c = state.convs.get(id);
  if (!c) {
    c = { id, kind: id.startsWith('d:') ? 'direct' : 'group', title: undefined, peer: peerOf(id), listUnread: 0, listSeq: 0, readSeq: 0, seq: 0, last: undefined,
      messages: new Map(), read: new Map(), delivered: new Map(), placeholder: false, loaded: false, hasOlder: false };
    state.convs.set(id, c);
  }
  Object.assign(c, init);
  return c;
}
const titleOf = (c) => (c.kind === 'group' ? c.title || 'group' : c.peer || c.id);

// ---- sign in ------------------------------------------------------------------------------

async function signIn({ user, token, transport }) {
  $('signin-error').textContent = '';
  const client = new HeraldClient({
    url: location.origin,
    user: user || undefined,
    token: token || undefined,
    transports: transport ? [transport] : undefined,
    openTimeoutMs: 5000,
  });
  const im = new ImClient(client);
  state.client = client;
  state.im = im;
  client.on('state', ({ state: s }) => {
    if (state.client !== client) return;
    $('banner').hidden = !(s === 'connecting' && state.wasConnected);
    if (s === 'closed') {
      $('banner').hidden = false;
      $('banner').textContent = 'Disconnected — sign in again';
    }
  });
  client.on('connected', (info) => {
    state.wasConnected = true;
    $('banner').hidden = true;
    $('transport').textContent = info.transport;
    document.body.dataset.transport = info.transport;
  });
  im.on('message', onMessage);
  im.on('receipt', onReceipt);
  im.on('typing', onTyping);
  im.on('presence', onPresence);
  im.on('invite', (i) => {
    state.invites.set(i.group, i);
    renderInvites();
  });
  im.on('synced', () => scheduleConversations());
  try {
    await im.start();
  } catch (err) {
    client.disconnect();
    $('signin-error').textContent = err.message || String(err);
    return;
  }
  state.me = im.user;
  $('me-name').textContent = state.me;
  $('signin').hidden = true;
  $('app').hidden = false;
  document.body.dataset.user = state.me;
  await Promise.all([loadContacts(), loadConversations(), loadInvites()]);
  document.body.dataset.ready = 'true';
}

/** Leave: stop the IM client, drop everything held for this user, back to the sign-in form. */
function signOut() {
  state.im?.stop();
  state.client?.disconnect();
  Object.assign(state, { me: '', client: null, im: null, convs: new Map(), contacts: new Map(), invites: new Map(), open: null, wasConnected: false });
  for (const id of ['contacts', 'invites', 'conversations', 'messages']) $(id).replaceChildren();
  $('conv-title').textContent = 'Pick a contact or conversation';
  $('typing').textContent = '';
  $('composer-text').disabled = true;
  $('send').disabled = true;
  showNotice('');
  $('contact-error').textContent = '';
  $('banner').hidden = true;
  $('app').hidden = true;
  $('signin').hidden = false;
  document.body.classList.remove('conv-open');
  delete document.body.dataset.ready;
  delete document.body.dataset.user;
  delete document.body.dataset.transport;
  document.title = 'Herald chat';
  // Do not sign in again from the URL on reload.
  if (location.search) history.replaceState(null, '', location.pathname);
}
$('sign-out').addEventListener('click', signOut);

$('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void signIn({ user: $('signin-name').value.trim(), token: $('signin-token').value.trim(), transport: $('signin-transport').value });
});

// ---- data ---------------------------------------------------------------------------------

async function loadContacts() {
  const list = await state.im.contacts();
  state.contacts = new Map(list.map((p) => [p.user, p]));
  renderContacts();
}

/** Pending group invitations (from people who are not mutual contacts): join or decline. */
async function loadInvites() {
  state.invites = new Map((await state.im.invites()).map((i) => [i.group, i]));
  renderInvites();
}

async function answerInvite(group, join) {
  try {
    if (join) await state.im.acceptInvite(group);
    else await state.im.declineInvite(group);
  } catch (err) {
    showNotice(`Cannot ${join ? 'join' : 'decline'}: ${err.message}`);
  }
  state.invites.delete(group);
  renderInvites();
  if (join) await loadConversations();
}

async function loadConversations() {
  const list = await state.im.conversations();
  for (const s of list) {
    const c = conv(s.id, { kind: s.kind, title: s.title, placeholder: false });
    c.readSeq = Math.max(c.readSeq, s.readSeq);
    c.seq = Math.max(c.seq, s.seq);
    // The list is a snapshot up to its seq: its unread count covers every message up to it,
    // whether or not that message has also arrived (or arrives later) live. See unreadOf.
    if (s.seq >= c.listSeq) Object.assign(c, { listSeq: s.seq, listUnread: s.unread });
    if (s.last) {
      if (!c.last || s.last.seq >= c.last.seq) c.last = s.last;
      if (c.loaded) c.messages.set(s.last.seq, s.last);
    }
  }
  renderConversations();
}

/**
 * A conversation's unread count, derived rather than kept: the last list snapshot's count
 * (none once the user has read past the snapshot) plus the messages from others held here
 * past both the snapshot and the read mark. A message that arrives live and is also in a
 * snapshot, or arrives twice, is therefore counted once, whatever the order of the two.
 */
function unreadOf(c) {
  if (state.open === c.id && !document.hidden) return 0;
  const from = Math.max(c.listSeq, c.readSeq);
  let n = c.readSeq >= c.listSeq ? 0 : c.listUnread;
  for (const m of c.messages.values()) if (m.kind === 'message' && m.from !== state.me && !m.recalled && m.seq > from) n++;
  return n;
}

let convTimer;
function scheduleConversations() {
  clearTimeout(convTimer);
  convTimer = setTimeout(() => void loadConversations().catch(() => undefined), 100);
}

function onMessage({ message: m }) {
  const known = state.convs.has(m.conversation);
  const c = conv(m.conversation, { placeholder: false });
  c.seq = Math.max(c.seq, m.seq);
  if (m.kind === 'message') {
    c.messages.set(m.seq, m);
    if (state.open === c.id && $('typing').textContent.startsWith(`${m.from} `)) $('typing').textContent = '';
    c.last = m;
    if (m.from !== state.me && state.open === c.id && !document.hidden) void markRead(c);
  } else if (m.kind === 'recall' || m.kind === 'edit') {
    applyChange(c, m);
  } else if (m.kind === 'member') {
    c.messages.set(m.seq, m);
  }
  if (!known) scheduleConversations();
  renderConversations();
  if (state.open === c.id) renderMessages();
}

function onReceipt(r) {
  if (r.user === state.me) return;
  const c = state.convs.get(r.conversation);
  if (!c) return;
  const map = r.kind === 'read' ? c.read : c.delivered;
  map.set(r.user, Math.max(map.get(r.user) ?? 0, r.seq));
  if (state.open === c.id) renderMessages();
}

let typingTimer;
function onTyping(t) {
  if (t.conversation !== state.open || t.user === state.me) return;
  $('typing').textContent = `${t.user} is typing…`;
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => ($('typing').textContent = ''), 3000);
}

function onPresence(p) {
  state.contacts.set(p.user, { ...state.contacts.get(p.user), ...p });
  renderContacts();
}

async function openConversation(id) {
  const c = conv(id);
  state.open = id;
  document.body.classList.add('conv-open');
  showNotice('');
  $('typing').textContent = '';
  $('composer-text').disabled = false;
  $('send').disabled = false;
  renderConversations();
  renderContacts();
  renderMessages();
  if (c.placeholder) return;
  const [page, members] = await Promise.all([state.im.history(id, { limit: PAGE }), state.im.members(id).catch(() => [])]);
  for (const m of page) c.messages.set(m.seq, m);
  if (!c.loaded) c.hasOlder = page.length >= PAGE;
  c.loaded = true;
  for (const mem of members) {
    if (mem.user === state.me) continue;
    c.read.set(mem.user, Math.max(c.read.get(mem.user) ?? 0, mem.readSeq));
    c.delivered.set(mem.user, Math.max(c.delivered.get(mem.user) ?? 0, mem.deliveredSeq));
  }
  if (state.open === id) renderMessages();
  await markRead(c);
}

async function markRead(c) {
  const top = Math.max(0, ...c.messages.keys(), c.seq);
  if (top <= c.readSeq || c.placeholder) return;
  c.readSeq = top;
  await state.im.read(c.id, top).catch(() => undefined);
  renderConversations();
}

/** Load the page of history before the oldest message held, keeping the view where it was. */
async function loadOlder() {
  const c = state.convs.get(state.open);
  if (!c || c.messages.size === 0) return;
  const oldest = Math.min(...c.messages.keys());
  $('older').disabled = true;
  try {
    const page = await state.im.history(c.id, { before: oldest, limit: PAGE });
    for (const m of page) c.messages.set(m.seq, m);
    c.hasOlder = page.length >= PAGE;
    if (state.open !== c.id) return;
    const ol = $('messages');
    const fromBottom = ol.scrollHeight - ol.scrollTop;
    renderMessages({ keepScroll: true });
    ol.scrollTop = ol.scrollHeight - fromBottom;
  } catch (err) {
    showNotice(`Could not load older messages: ${err.message}`);
  } finally {
    $('older').disabled = false;
  }
}
$('older').addEventListener('click', () => void loadOlder());

$('back').addEventListener('click', () => {
  document.body.classList.remove('conv-open');
  state.open = null;
  renderConversations();
  renderContacts();
});

/** A line under the conversation (empty text hides it). */
function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

function openDirect(peer) {
  const id = directId(state.me, peer);
  if (!state.convs.has(id)) conv(id, { kind: 'direct', peer, placeholder: true });
  void openConversation(id);
}

// ---- actions ------------------------------------------------------------------------------

$('composer').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('composer-text');
  const text = input.value.trim();
  const c = state.convs.get(state.open);
  if (!text || !c) return;
  input.value = '';
  const target = c.placeholder ? { to: c.peer } : { conversation: c.id };
  showNotice('');
  try {
    const ack = await state.im.send(target, { text });
    const cc = conv(ack.conversation, { placeholder: false });
    cc.messages.set(ack.seq, { id: ack.id, conversation: ack.conversation, seq: ack.seq, from: state.me, kind: 'message', time: ack.time, data: { text } });
    cc.seq = Math.max(cc.seq, ack.seq);
    cc.readSeq = Math.max(cc.readSeq, ack.seq);
    cc.last = cc.messages.get(ack.seq);
    if (state.open === cc.id) renderMessages();
    renderConversations();
  } catch (err) {
    input.value = text;
    showNotice(err.errorName === UNKNOWN_USER ? `Not sent. ${neverSignedIn(c.peer ?? 'Someone here')}` : `Not sent: ${err.message}`);
  }
});

let lastTyping = 0;
$('composer-text').addEventListener('input', () => {
  const c = state.convs.get(state.open);
  if (!c || c.placeholder || Date.now() - lastTyping < 1500) return;
  lastTyping = Date.now();
  state.im.typing(c.id).catch(() => undefined);
});

$('add-contact').addEventListener('submit', async (e) => {
  e.preventDefault();
  const name = $('add-contact-name').value.trim();
  if (!name) return;
  $('contact-error').textContent = '';
  try {
    await state.im.addContact(name);
    $('add-contact-name').value = '';
    await loadContacts();
  } catch (err) {
    $('contact-error').textContent = err.errorName === UNKNOWN_USER ? neverSignedIn(name) : `Cannot add ${name}: ${err.message}`;
  }
});

$('new-group').addEventListener('click', () => {
  $('group-form').reset();
  $('group-error').textContent = '';
  $('group-dialog').showModal();
  $('group-title').focus();
});
$('group-cancel').addEventListener('click', () => $('group-dialog').close());
$('group-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const title = $('group-title').value.trim();
  const members = $('group-members').value.split(',').map((s) => s.trim()).filter(Boolean);
  if (members.length === 0) {
    $('group-error').textContent = 'Name at least one member.';
    return;
  }
  $('group-create').disabled = true;
  try {
    const g = await state.im.createGroup(members, title || undefined);
    $('group-dialog').close();
    await loadConversations();
    await openConversation(g.group);
    // Only mutual contacts join at once; the others get an invitation to accept.
    if (g.invited.length) showNotice(`Invited ${g.invited.join(', ')}: they join when they accept.`);
  } catch (err) {
    const who = /Unknown user: (.*)$/.exec(err.message ?? '')?.[1] ?? 'A member';
    $('group-error').textContent = err.errorName === UNKNOWN_USER ? neverSignedIn(who) : `Cannot create the group: ${err.message}`;
  } finally {
    $('group-create').disabled = false;
  }
});

// ---- edit and recall of one's own messages --------------------------------------------------

let editing;
function startEdit(m) {
  editing = m;
  $('edit-text').value = textOf(m.data);
  $('edit-error').textContent = '';
  $('edit-dialog').showModal();
  $('edit-text').select();
}
$('edit-cancel').addEventListener('click', () => $('edit-dialog').close());
$('edit-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const m = editing;
  const text = $('edit-text').value.trim();
  if (!m || !text) return;
  try {
    const ack = await state.im.edit(m.id, { text });
    $('edit-dialog').close();
    applyChange(conv(m.conversation), { kind: 'edit', target: m.id, data: { text }, time: ack.time });
  } catch (err) {
    $('edit-error').textContent = `Not edited: ${err.message}`;
  }
});

async function recall(m) {
  try {
    await state.im.recall(m.id);
    applyChange(conv(m.conversation), { kind: 'recall', target: m.id });
  } catch (err) {
    showNotice(`Not recalled: ${err.message}`);
  }
}

/** Apply an edit or recall entry to the message it targets. */
function applyChange(c, m) {
  for (const x of c.messages.values()) {
    if (x.id !== m.target) continue;
    const changed = m.kind === 'recall' ? { ...x, recalled: true, data: null } : { ...x, data: m.data, editedAt: m.time };
    c.messages.set(x.seq, changed);
    if (c.last?.id === x.id) c.last = changed;
  }
  renderConversations();
  if (state.open === c.id) renderMessages({ keepScroll: true });
}

$('me-presence').addEventListener('change', (e) => void state.im.setPresence(e.target.value).catch(() => undefined));
document.addEventListener('visibilitychange', () => {
  const c = state.convs.get(state.open);
  if (!document.hidden && c) void markRead(c);
});

// ---- rendering ----------------------------------------------------------------------------

function renderContacts() {
  const ul = $('contacts');
  ul.replaceChildren();
  for (const p of [...state.contacts.values()].sort((a, b) => a.user.localeCompare(b.user))) {
    const li = el('li', state.open === directId(state.me, p.user) ? 'contact active' : 'contact');
    li.dataset.user = p.user;
    li.dataset.state = p.state;
    li.append(el('span', `dot ${p.state}`), el('span', 'name', p.user));
    li.title = p.status ? `${p.state}: ${p.status}` : p.state;
    li.onclick = () => openDirect(p.user);
    ul.append(li);
  }
}

function renderInvites() {
  const ul = $('invites');
  ul.replaceChildren();
  for (const i of state.invites.values()) {
    const li = el('li', 'invite');
    li.dataset.group = i.group;
    const name = el('span', 'name', i.title || 'a group');
    name.append(el('span', 'preview', `invited by ${i.from}`));
    const join = el('button', 'small join', 'Join');
    join.onclick = () => void answerInvite(i.group, true);
    const decline = el('button', 'small ghost decline', 'Decline');
    decline.onclick = () => void answerInvite(i.group, false);
    li.append(el('span', 'dot group'), name, join, decline);
    ul.append(li);
  }
}

function renderConversations() {
  const ul = $('conversations');
  ul.replaceChildren();
  const list = [...state.convs.values()].filter((c) => !c.placeholder).sort((a, b) => (b.last?.time ?? 0) - (a.last?.time ?? 0));
  let total = 0;
  for (const c of list) {
    const li = el('li', state.open === c.id ? 'conv-item active' : 'conv-item');
    li.dataset.id = c.id;
    const name = el('span', 'name', titleOf(c));
    if (c.last) name.append(el('span', 'preview', `${c.last.from === state.me ? 'you' : c.last.from}: ${c.last.recalled ? '(recalled)' : textOf(c.last.data)}`));
    const dot = c.kind === 'direct' ? el('span', `dot ${state.contacts.get(c.peer)?.state ?? ''}`) : el('span', 'dot group');
    li.append(dot, name);
    const unread = unreadOf(c);
    if (unread > 0) li.append(el('span', 'unread', String(unread)));
    total += unread;
    li.onclick = () => void openConversation(c.id);
    ul.append(li);
  }
  document.title = total > 0 ? `(${total}) Herald chat` : 'Herald chat';
}

/** A group membership event as a line of text. */
function memberText(m) {
  const d = m.data || {};
  switch (d.action) {
    case 'created': return `${m.from} created ${d.title ? `“${d.title}”` : 'the group'} with ${(d.members || []).join(', ')}`;
    case 'added': return `${m.from} added ${(d.users || []).join(', ')}`;
    case 'removed': return `${m.from} removed ${d.user}`;
    case 'left': return `${d.user} left`;
    case 'joined': return `${d.user} joined`;
    case 'role': return `${d.user} is now ${d.role}`;
    default: return `${m.from}: ${JSON.stringify(d)}`;
  }
}

function renderMessages({ keepScroll = false } = {}) {
  const c = state.convs.get(state.open);
  const ol = $('messages');
  const top = ol.scrollTop;
  ol.replaceChildren();
  $('older').hidden = !c?.hasOlder;
  // Live messages show at once; the newest page of history joins them when it arrives.
  ol.dataset.loaded = String(Boolean(c?.loaded || c?.placeholder));
  if (!c) return;
  $('conv-title').textContent = titleOf(c);
  const others = (map) => Math.max(0, ...map.values());
  const readUpTo = others(c.read);
  const deliveredUpTo = Math.max(others(c.delivered), readUpTo);
  for (const m of [...c.messages.values()].sort((a, b) => a.seq - b.seq)) {
    // Edit and recall entries (from history) act on their target; they are not shown.
    if (m.kind === 'edit' || m.kind === 'recall') continue;
    if (m.kind === 'member') {
      ol.append(el('li', 'msg system', memberText(m)));
      continue;
    }
    const mine = m.from === state.me;
    const li = el('li', `msg${mine ? ' mine' : ''}${m.recalled ? ' recalled' : ''}`);
    li.dataset.seq = String(m.seq);
    if (!mine && c.kind === 'group') li.append(el('span', 'from', m.from));
    li.append(el('span', 'text', m.recalled ? '(recalled)' : textOf(m.data)));
    const time = new Date(m.time).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    const status = mine ? (m.seq <= readUpTo ? ' ✓✓ read' : m.seq <= deliveredUpTo ? ' ✓✓' : ' ✓') : '';
    const meta = el('span', 'meta', `${time}${m.editedAt ? ' (edited)' : ''}${status}`);
    if (mine) meta.dataset.status = m.seq <= readUpTo ? 'read' : m.seq <= deliveredUpTo ? 'delivered' : 'sent';
    li.append(meta);
    if (mine && !m.recalled && m.id) {
      const actions = el('span', 'actions');
      const edit = el('button', 'edit', 'Edit');
      edit.type = 'button';
      edit.onclick = () => startEdit(m);
      const rec = el('button', 'recall', 'Recall');
      rec.type = 'button';
      rec.onclick = () => void recall(m);
      actions.append(edit, rec);
      li.append(actions);
    }
    ol.append(li);
  }
  ol.scrollTop = keepScroll ? top : ol.scrollHeight;
}

// ---- auto sign-in from the URL: /?user=alice&transport=sse ------------------------------------
const q = new URLSearchParams(location.search);
if (q.get('user') || q.get('token')) void signIn({ user: q.get('user') ?? '', token: q.get('token') ?? '', transport: q.get('transport') ?? '' });
