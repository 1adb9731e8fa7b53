/**
 * slixmpp (Debian's python3-slixmpp, a client nobody here wrote) driven from a test: the Python
 * side is test/fixtures/xmpp-slixmpp-sm.py, which logs in with resumable stream management
 * (XEP-0198), reports its events as JSON lines and obeys commands on stdin.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Inbox } from './clients.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/xmpp-slixmpp-sm.py', import.meta.url));
/** Debian's interpreter, where python3-slixmpp is installed (not a python3 of a version manager earlier in PATH). */
const PYTHON = '/usr/bin/python3';

/** One event the client reported. */
export type SlixEvent = { event: string; body?: string; sender?: string; delayed?: boolean; id?: string };

/** The slixmpp client process: its events, a way to send it commands, and a wait for one event. */
export interface Slixmpp {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly events: Inbox<SlixEvent>;
  command(line: string): void;
  stderr(): string;
  /** The next event of this kind (its stderr in the error when it does not come). */
  take(event: string, timeoutMs?: number): Promise<SlixEvent>;
}

/** Start slixmpp as `jid` against the XMPP TCP port `port` on 127.0.0.1. */
export function slixmpp(port: number, jid: string): Slixmpp {
  const proc = spawn(PYTHON, [FIXTURE, String(port), jid]);
  const events = new Inbox<SlixEvent>();
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: proc.stdout }).on('line', (line) => {
    try {
      events.put(JSON.parse(line) as SlixEvent);
    } catch {
      stderr += `unparsed: ${line}\n`;
    }
  });
  return {
    proc,
    events,
    command: (line) => proc.stdin.write(`${line}\n`),
    stderr: () => stderr,
    take: (event, timeoutMs = 15_000) =>
      events
        .take((e) => e.event === event, timeoutMs)
        .catch((err: Error) => {
          throw new Error(`${err.message}; slixmpp stderr: ${stderr.slice(-2000)}`);
        }),
  };
}
