/**
 * Group spam replay (issue #12, item 14): one connection creates groups naming the same 199
 * registered users as fast as the server answers, while a second client polls `/health`. Reports
 * groups created and refused, the IM store rows written (inbox entries, memberships,
 * invitations) and the slowest `/health` answer. The server is bench/im-server.ts of `--root`
 * (default: this checkout), so two checkouts can be compared on the same machine.
 *
 *   node --import tsx bench/im-group-spam.ts [--root <checkout>] [--groups 900] [--members 199]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

const here = dirname(fileURLToPath(import.meta.url));
const { values: args } = parseArgs({
  options: { root: { type: 'string', default: resolve(here, '..') }, groups: { type: 'string', default: '900' }, members: { type: 'string', default: '199' } },
});
const GROUPS = Number(args.groups);
const MEMBERS = Number(args.members);
const dir = mkdtempSync(join(tmpdir(), 'herald-spam-'));
const db = join(dir, 'im.db');

const child = spawn(process.execPath, ['--import', 'tsx', join(args.root!, 'bench', 'im-server.ts'), db, 'normal'], {
  cwd: args.root,
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise<string>((ok, fail) => {
  createInterface({ input: child.stdout! }).on('line', (l) => l.startsWith('READY ') && ok(l.slice(6)));
  child.once('exit', (code) => fail(new Error(`server exited with ${code}`)));
});

try {
  const victims = Array.from({ length: MEMBERS }, (_, i) => `victim${i}`);
  const reg = await fetch(`${url}/api/im/users`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ users: victims.map((id) => ({ id })) }),
  });
  if (!reg.ok) throw new Error(`register: ${reg.status}`);

  let healthMax = 0;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const t0 = performance.now();
      await (await fetch(`${url}/health`)).text();
      healthMax = Math.max(healthMax, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();

  const ws = new WebSocket(`${url.replace('http', 'ws')}/connection/websocket`);
  await new Promise((ok, fail) => ws.once('open', ok).once('error', fail));
  const pending = new Map<number, (f: any) => void>();
  ws.on('message', (raw) => {
    const f = JSON.parse(String(raw));
    if (f.id !== undefined) pending.get(f.id)?.(f);
  });
  let id = 0;
  const command = (cmd: string, p: Record<string, unknown>): Promise<any> =>
    new Promise((ok) => {
      const n = ++id;
      pending.set(n, ok);
      ws.send(JSON.stringify({ id: n, cmd, ...p }));
    });
  await command('connect', { user: 'mallory' });
  const started = performance.now();
  let created = 0;
  const refused = new Map<string, number>();
  for (let i = 0; i < GROUPS; i++) {
    const r = await command('im.group.create', { title: `spam ${i}`, members: victims });
    if (r.error) refused.set(r.error.name, (refused.get(r.error.name) ?? 0) + 1);
    else created++;
  }
  const seconds = (performance.now() - started) / 1000;
  polling = false;
  await poller;
  ws.close();

  const Database = createRequire(join(args.root!, 'package.json'))('better-sqlite3');
  const read = new Database(db, { readonly: true });
  const count = (table: string): number => {
    try {
      return (read.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
    } catch {
      return 0; // the table does not exist in that checkout
    }
  };
  const victimMemberships = (read.prepare("SELECT count(*) AS n FROM im_members WHERE user LIKE 'victim%'").get() as { n: number }).n;
  console.log(
    JSON.stringify({
      root: args.root,
      attempts: GROUPS,
      members: MEMBERS,
      seconds: Number(seconds.toFixed(2)),
      created,
      refused: Object.fromEntries(refused),
      inboxRows: count('im_inbox'),
      victimMemberships,
      pendingInvites: count('im_invites'),
      healthMaxMs: Math.round(healthMax),
    }),
  );
  read.close();
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
