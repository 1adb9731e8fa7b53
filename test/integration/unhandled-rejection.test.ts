/**
 * A promise rejection nobody handles is logged and the node keeps serving (issue 12, item 1: a
 * rejection left unhandled killed every connection of the node; Node's default is to exit). The
 * rejection comes from a preloaded fixture, since no remote input is known to cause one any more.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { listening, run, useCliRuns } from '../helpers/cli-run.js';
import { WsClient } from '../helpers/clients.js';
import { waitFor } from '../helpers/server.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'stray-rejection.ts');

describe('unhandled promise rejections', () => {
  const { running } = useCliRuns('herald-unhandled');

  test('are logged with their stack, and the node and its connections stay up', async () => {
    const r = run(['--port', '0', '--dev'], { NODE_OPTIONS: `--import=tsx --import=${FIXTURE}` });
    running.push(r);
    const port = await listening(r);
    const ws = await WsClient.connected(`ws://127.0.0.1:${port}/connection/websocket`, { user: 'stays' });
    try {
      r.child.kill('SIGUSR2');
      await waitFor(() => r.stdout.includes('unhandled promise rejection') || r.child.exitCode !== null, 15_000, 'the rejection logged');
      assert.equal(r.child.exitCode, null, `the node died: ${r.stderr.slice(0, 300)}`);
      const line = JSON.parse(r.stdout.split('\n').find((l) => l.includes('unhandled promise rejection'))!) as { level: number; err: string };
      assert.equal(line.level, 50, 'logged as an error');
      assert.match(line.err, /stray rejection from the test fixture/);
      assert.match(line.err, /stray-rejection\.ts/, 'with its stack');
      // Still alive: its HTTP answers and the open WebSocket session.
      assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);
      assert.equal((await ws.command('ping')).error, undefined);
    } finally {
      ws.terminate();
    }
  });
});
