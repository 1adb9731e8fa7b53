/**
 * Run the `herald` CLI from source as a child process (test/helpers/herald-cli.ts), each with
 * its own data directory and an environment free of the developer's HERALD_* variables.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before } from 'node:test';

const ENTRY = join(import.meta.dirname, '..', 'helpers', 'herald-cli.ts');

/** The environment without any HERALD_* variable of the developer's shell. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HERALD_')) env[k] = v;
  return { ...env, ...extra };
}

export interface Run {
  child: ChildProcess;
  stdout: string;
  stderr: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Each spawned server gets its own data directory (embedded stores must not share files). */
let dataDirs = 0;
export function run(args: string[], env: Record<string, string> = {}, cwd?: string): Run {
  const dataDir = join(tmpdir(), `herald-cli-data-${process.pid}-${++dataDirs}`);
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    env: cleanEnv({ HERALD_DATA_DIR: dataDir, ...env }),
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.once('exit', () => rmSync(dataDir, { recursive: true, force: true }));
  const r: Run = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
  };
  child.stdout!.on('data', (d: Buffer) => (r.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (r.stderr += d.toString()));
  return r;
}

/** Wait for the "listening" log line; returns the port. */
export async function listening(r: Run, timeoutMs = 45_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = /"port":(\d+)[^\n]*herald listening/.exec(r.stdout);
    if (m) return Number(m[1]);
    if (r.child.exitCode !== null) throw new Error(`herald exited ${r.child.exitCode}: ${r.stderr}${r.stdout}`);
    if (Date.now() > deadline) throw new Error(`herald did not start: ${r.stderr}${r.stdout}`);
    await new Promise((res) => setTimeout(res, 20));
  }
}

/** A port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/**
 * A describe block's scratch folder (`dir`, made before the block, removed after it) and the
 * runs its tests push on `running`: those still alive are killed (SIGKILL) after each test.
 */
export function useCliRuns(tag: string): { readonly dir: string; readonly running: Run[] } {
  let dir: string | undefined;
  const running: Run[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), `${tag}-`));
  });
  afterEach(async () => {
    for (const r of running.splice(0)) {
      if (r.child.exitCode === null && r.child.signalCode === null) {
        r.child.kill('SIGKILL');
        await r.exited;
      }
    }
  });
  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  return {
    running,
    get dir() {
      if (!dir) throw new Error('useCliRuns: the folder exists only while the block runs');
      return dir;
    },
  };
}
