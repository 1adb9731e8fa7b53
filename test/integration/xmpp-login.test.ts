/**
 * The work of one XMPP login over TCP, seen from outside: every stream gets its own stream id,
 * and the IM store's inbox is read at initial presence only when something waits past the
 * user's acknowledged cursor (a login with nothing waiting reads no inbox page; one with
 * messages waiting gets them, with delay stamps). Counted with `/metrics`
 * (`herald_im_store_operations_total`), with a raw TCP client.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { HeraldServer } from '../../src/index.js';
import { startServer } from '../helpers/server.js';
import { plain, rawTcp, rawTcpBound, type RawTcpXmpp, STREAM_HEADER } from '../helpers/xmpp.js';

describe('XMPP login over TCP: stream ids and the inbox read at initial presence', () => {
  let server: HeraldServer;
  const dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-login-'));
  const open: RawTcpXmpp[] = [];
  before(async () => {
    server = await startServer({ dev: true, dataDir: dir, xmpp: { tcpPort: 0 } });
  });
  after(async () => {
    for (const c of open) c.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Inbox pages read from the IM store so far. */
  const inboxReads = async (): Promise<number> => {
    const text = await (await fetch(`${server.url()}/metrics`)).text();
    return Number(/^herald_im_store_operations_total\{op="inbox",outcome="ok"\} (\d+)$/m.exec(text)?.[1] ?? 0);
  };
  /** Bound and available (initial presence answered with the user's own presence). */
  const available = async (user: string): Promise<RawTcpXmpp> => {
    const c = await rawTcpBound(server, user);
    open.push(c);
    c.send('<presence/>');
    await c.until(new RegExp(`<presence[^>]*from="${user}@localhost"`));
    return c;
  };

  test('each stream of a login has its own id: 16 hexadecimal characters', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const c = await rawTcp(server);
      open.push(c);
      c.send(STREAM_HEADER);
      await c.until(/<\/stream:features>/);
      c.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${plain(`ids${i}`)}</auth>`);
      await c.until(/<success/);
      c.send(STREAM_HEADER);
      const text = await c.until((t) => t.split('</stream:features>').length === 3);
      const streamIds = [...text.matchAll(/<stream:stream [^>]*\bid="([^"]*)"/g)].map((m) => m[1]!);
      assert.equal(streamIds.length, 2, text);
      for (const id of streamIds) {
        assert.match(id, /^[0-9a-f]{16}$/);
        ids.add(id);
      }
      c.close();
    }
    assert.equal(ids.size, 40, 'no stream id is given twice');
  });

  test('nothing waiting: no inbox read; messages waiting: read once and delivered with delay stamps', async () => {
    const before = await inboxReads();
    const a = await available('login-alice');
    // Nothing is waiting for a new user: its login reads no inbox page.
    assert.equal(await inboxReads(), before);
    // Messages to bob while bob is offline (bob is known: registered through the server API).
    assert.equal(
      (
        await fetch(`${server.url()}/api/im/users`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ users: [{ id: 'login-bob' }] }),
        })
      ).status,
      200,
    );
    for (const body of ['one', 'two']) a.send(`<message type='chat' to='login-bob@localhost' id='${body}'><body>${body}</body></message>`);
    a.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    await a.until(/id="p1"/);
    const b = await available('login-bob');
    const text = await b.until((t) => t.includes('<body>two</body>'));
    assert.ok(text.indexOf('<body>one</body>') < text.indexOf('<body>two</body>'), 'in order');
    assert.equal([...text.matchAll(/<delay xmlns="urn:xmpp:delay"/g)].length, 2, 'both carry a delay stamp');
    assert.ok((await inboxReads()) > before, 'what waited was read from the inbox');
  });
});
