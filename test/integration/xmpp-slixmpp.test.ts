/**
 * slixmpp (Debian's python3-slixmpp, a client nobody here wrote) against the XMPP TCP port:
 * stream management (XEP-0198) with resumption. The client loses its connection without closing
 * the stream, messages arrive for it meanwhile, it reconnects and resumes: every message arrives
 * exactly once, in order, and the resumed stream carries messages both ways.
 * The Python side is test/fixtures/xmpp-slixmpp-sm.py (test/helpers/slixmpp.ts drives it); CI installs python3-slixmpp (.ci/run).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { xml } from '@xmpp/client';
import type { HeraldServer } from '../../src/index.js';
import { sleep, startServer } from '../helpers/server.js';
import { slixmpp } from '../helpers/slixmpp.js';
import { connectXmpp, xmppTcpPort } from '../helpers/xmpp.js';

describe('XMPP stream management with slixmpp', () => {
  let server: HeraldServer;
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'herald-xmpp-slix-'));
    server = await startServer({ dev: true, xmpp: { tcpPort: 0 }, im: { storePath: join(dir, 'im.db') } });
  });
  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a dropped connection is resumed: messages sent meanwhile arrive once, in order, none lost', async () => {
    const bob = await connectXmpp(server, { username: 'slixbob' });
    // Available: bob's session receives his inbox.
    await bob.xmpp.send(xml('presence'));
    const alice = slixmpp(await xmppTcpPort(server), 'slixalice@localhost/slix');
    const take = alice.take;
    try {
      const enabled = await take('enabled');
      assert.ok(enabled.id, 'resumable: the server gave a resumption id');
      await take('session_start');
      await bob.xmpp.send(xml('message', { to: 'slixalice@localhost', type: 'chat' }, xml('body', {}, 'm1')));
      assert.equal((await take('message')).body, 'm1');

      alice.command('drop');
      await take('disconnected');
      await bob.xmpp.send(xml('message', { to: 'slixalice@localhost', type: 'chat' }, xml('body', {}, 'm2')));
      await bob.xmpp.send(xml('message', { to: 'slixalice@localhost', type: 'chat' }, xml('body', {}, 'm3')));
      await sleep(300);

      alice.command('reconnect');
      const resumed = await take('resumed');
      assert.equal(resumed.id, enabled.id);
      assert.deepEqual([(await take('message')).body, (await take('message')).body], ['m2', 'm3']);

      alice.command('send slixbob@localhost after resume');
      const back = await bob.stanzas.take((s) => s.is('message'), 10_000);
      assert.equal(back.getChildText('body'), 'after resume');

      alice.command('end');
      await take('ended');
      await sleep(100);
      const extra = alice.events.items.filter((e) => e.event === 'message' || e.event === 'sm_failed');
      assert.deepEqual(extra, [], 'no message twice, no failed resumption');
    } finally {
      alice.proc.kill();
      await bob.stop();
    }
  });
});
