/**
 * Start and stop a private real Nchan (nginx + libnginx-mod-nchan) for the conformance suite:
 * renders nginx.conf.template with a free port into a fresh prefix dir under /tmp, runs
 * `nginx -p <prefix> -c <conf> -g 'daemon off;'` as a child, waits until it answers, and stops
 * it by its pid. Run directly (`npx tsx test/conformance/nchan/start-nchan.ts <hookPort>`) it
 * prints the base URL and keeps nginx running until Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const NGINX = process.env.NGINX_BIN ?? '/usr/sbin/nginx';

/** A running private Nchan. */
export interface NchanInstance {
  readonly baseUrl: string;
  readonly port: number;
  readonly prefix: string;
  stop(): Promise<void>;
}

/** A TCP port that was free a moment ago (bound and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Render the template, start nginx and wait until it serves /nchan_stub_status. */
export async function startNchan(opts: { hookPort: number }): Promise<NchanInstance> {
  const port = await freePort();
  const deadPort = await freePort();
  const prefix = mkdtempSync(join(tmpdir(), 'herald-nchan-'));
  chmodSync(prefix, 0o755);
  for (const d of ['logs', 'tmp']) {
    mkdirSync(join(prefix, d));
    chmodSync(join(prefix, d), 0o777);
  }
  const conf = readFileSync(join(HERE, 'nginx.conf.template'), 'utf8')
    .replaceAll('{{PREFIX}}', prefix)
    .replaceAll('{{PORT}}', String(port))
    .replaceAll('{{HOOK_PORT}}', String(opts.hookPort))
    .replaceAll('{{DEAD_PORT}}', String(deadPort));
  const confPath = join(prefix, 'nginx.conf');
  writeFileSync(confPath, conf);
  const child: ChildProcess = spawn(NGINX, ['-p', prefix, '-c', confPath, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // If the test process dies without stop(), take nginx down with it.
  const killOnExit = (): void => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`nginx exited (${child.exitCode}): ${stderr}`);
    try {
      const r = await fetch(`${baseUrl}/nchan_stub_status`);
      await r.arrayBuffer();
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`nginx did not start: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    baseUrl,
    port,
    prefix,
    async stop() {
      if (child.exitCode === null && child.pid !== undefined) {
        process.kill(child.pid, 'SIGTERM');
        const t = setTimeout(() => {
          if (child.exitCode === null) child.kill('SIGKILL');
        }, 3000);
        await exited;
        clearTimeout(t);
      }
      process.off('exit', killOnExit);
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const hookPort = Number(process.argv[2] ?? 9);
  const n = await startNchan({ hookPort });
  console.log(`nchan at ${n.baseUrl} (prefix ${n.prefix}); Ctrl-C to stop`);
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.on(sig, () => {
      void n.stop().then(() => process.exit(0));
    });
}
