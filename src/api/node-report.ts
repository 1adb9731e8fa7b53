/**
 * A node's report of itself (`NodeInfo` with `NodeStats`): what it announces in the node
 * registry on every heartbeat and what `GET /api/nodes` lists. Workers of one host
 * (`herald serve --workers N`) also exchange reports over the cluster IPC channel, through the
 * primary, so any worker can answer for the whole host at once, with or without the registry.
 */
import cluster from 'node:cluster';
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { hostname, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { HeraldCore } from '../core/core.js';
import type { NodeInfo, NodeLoad } from '../core/nodes.js';
import { type LoopDelayReader, openLoopDelay } from './loop-delay.js';

/** The installed package's version (package.json two levels up from src/api and dist/api). */
export const HERALD_VERSION = (createRequire(import.meta.url)('../../package.json') as { version: string }).version;

/** Shortest window CPU and event loop delay are measured over, ms: reports asked for sooner reuse the last sample. */
const LOAD_WINDOW_MS = 1_000;
/** Longest wait for the other workers' reports, ms (a worker that does not answer is counted, not waited for). */
export const WORKER_REPORT_TIMEOUT_MS = 1_000;

/**
 * Samples the process's CPU share and event loop delay over windows of at least LOAD_WINDOW_MS.
 * Its reader of the loop delay sampler opens with the first report asked for, so a node nobody
 * asks (one process, no registry) never samples for it; the first report says 0.
 */
class LoadSampler {
  #delay: LoopDelayReader | undefined;
  #cpuAt = process.cpuUsage();
  #at = performance.now();
  #cpu = 0;
  #loopDelayMs = 0;

  sample(): NodeLoad {
    this.#delay ??= openLoopDelay();
    const now = performance.now();
    if (now - this.#at >= LOAD_WINDOW_MS) {
      const used = process.cpuUsage(this.#cpuAt);
      this.#cpu = (used.user + used.system) / 1000 / (now - this.#at);
      const h = this.#delay.histogram;
      this.#loopDelayMs = h.count > 0 ? h.percentile(99) / 1e6 : 0;
      h.reset();
      this.#cpuAt = process.cpuUsage();
      this.#at = now;
    }
    const mem = process.memoryUsage();
    return {
      cpu: round(this.#cpu, 3),
      eventLoopDelayMs: round(this.#loopDelayMs, 2),
      loadAverage: round(loadavg()[0] ?? 0, 2),
      rss: mem.rss,
      heapUsed: mem.heapUsed,
    };
  }

  close(): void {
    this.#delay?.close();
  }
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits;

/** Where clients reach the node and whether it takes new ones; asked at each report. */
export interface NodeReportSource {
  /** Base URL clients use (the advertised URL, else the listening address). */
  readonly url: () => string;
  /** True while draining or shutting down. */
  readonly draining: () => boolean;
}

/**
 * Builds this node's reports. In a worker it also answers the primary's requests for them
 * (`serveHostReports` in the primary), so every worker of the host can list the others.
 */
export class NodeReporter {
  readonly #core: HeraldCore;
  readonly #source: NodeReportSource;
  readonly #load = new LoadSampler();
  readonly #host = hostname();
  #answerPrimary: ((msg: unknown) => void) | undefined;

  constructor(core: HeraldCore, source: NodeReportSource) {
    this.#core = core;
    this.#source = source;
    if (cluster.isWorker && process.send) {
      this.#answerPrimary = (msg) => {
        const m = msg as ReportRequest;
        if (m?.type !== 'herald:node-report-request') return;
        process.send?.({ type: 'herald:node-report', id: m.id, report: this.report() } satisfies ReportAnswer);
      };
      process.on('message', this.#answerPrimary);
    }
  }

  /** This node's current report (its `url` is '' until the server listens, unless one is advertised). */
  report(): NodeInfo {
    const core = this.#core;
    const s = core.stats();
    return {
      id: core.nodeId,
      url: this.#source.url(),
      connections: s.connections,
      draining: this.#source.draining(),
      stats: {
        host: this.#host,
        pid: process.pid,
        version: HERALD_VERSION,
        startedAt: core.startedAt,
        reportedAt: Date.now(),
        subscriptions: s.subscriptions,
        channels: s.channels,
        connectionsByTransport: core.hub.connectionsByTransport(),
        published: s.published,
        delivered: s.delivered,
        load: this.#load.sample(),
      },
    };
  }

  /** Stop sampling and stop answering the primary. */
  close(): void {
    this.#load.close();
    if (this.#answerPrimary) process.off('message', this.#answerPrimary);
    this.#answerPrimary = undefined;
  }
}

/** What the workers of this host reported, through the primary. */
export interface HostReports {
  /** Reports of the workers that answered (the asking one included). */
  readonly reports: NodeInfo[];
  /** Workers that did not answer within WORKER_REPORT_TIMEOUT_MS. */
  readonly unanswered: number;
}

/** Worker → primary: send me every worker's report. */
interface HostReportsRequest {
  readonly type: 'herald:nodes-request';
  readonly id: string;
}
/** Primary → worker: the reports, under the request's id. */
interface HostReportsAnswer extends HostReports {
  readonly type: 'herald:nodes-response';
  readonly id: string;
}
/** Primary → every worker: report yourself. */
interface ReportRequest {
  readonly type: 'herald:node-report-request';
  readonly id: string;
}
/** Worker → primary: my report. */
interface ReportAnswer {
  readonly type: 'herald:node-report';
  readonly id: string;
  readonly report: NodeInfo;
}

/**
 * In a worker: every worker's report, gathered by the primary. Undefined outside a worker.
 * Rejects when the primary does not answer (it always answers within WORKER_REPORT_TIMEOUT_MS).
 */
export function hostReports(): Promise<HostReports> | undefined {
  if (!cluster.isWorker || !process.send) return undefined;
  const id = randomUUID();
  return new Promise<HostReports>((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage);
      reject(new Error('the primary did not answer with the workers’ reports'));
    }, WORKER_REPORT_TIMEOUT_MS * 2);
    const onMessage = (msg: HostReportsAnswer): void => {
      if (msg?.type !== 'herald:nodes-response' || msg.id !== id) return;
      clearTimeout(timer);
      process.off('message', onMessage);
      resolve({ reports: msg.reports, unanswered: msg.unanswered });
    };
    process.on('message', onMessage);
    process.send!({ type: 'herald:nodes-request', id } satisfies HostReportsRequest);
  });
}

/**
 * In the primary: answer workers' requests for the host's reports by asking every live worker
 * and answering with what came back within WORKER_REPORT_TIMEOUT_MS. Call once, before forking.
 */
export function serveHostReports(): void {
  const pending = new Map<string, { reports: NodeInfo[]; waiting: Set<number>; finish: () => void }>();
  cluster.on('message', (worker, msg: HostReportsRequest | ReportAnswer) => {
    if (msg?.type === 'herald:node-report') {
      const p = pending.get(msg.id);
      if (!p?.waiting.delete(worker.id)) return;
      p.reports.push(msg.report);
      if (p.waiting.size === 0) p.finish();
      return;
    }
    if (msg?.type !== 'herald:nodes-request') return;
    const id = randomUUID();
    const finish = (): void => {
      clearTimeout(timer);
      pending.delete(id);
      if (!worker.isConnected()) return;
      worker.send({ type: 'herald:nodes-response', id: msg.id, reports: entry.reports, unanswered: entry.waiting.size } satisfies HostReportsAnswer);
    };
    const entry = { reports: [] as NodeInfo[], waiting: new Set<number>(), finish };
    const timer = setTimeout(finish, WORKER_REPORT_TIMEOUT_MS);
    pending.set(id, entry);
    for (const w of Object.values(cluster.workers ?? {})) {
      if (!w?.isConnected()) continue;
      entry.waiting.add(w.id);
      w.send({ type: 'herald:node-report-request', id } satisfies ReportRequest);
    }
    if (entry.waiting.size === 0) finish();
  });
}
