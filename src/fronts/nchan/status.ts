/** `nchan_stub_status`: Nchan's text/plain status page, filled from Herald's counters. */
import type { HeraldCore } from '../../core/core.js';

/** The version line Herald reports: the Nchan version whose wire protocol it follows. */
export const NCHAN_COMPAT_VERSION = '1.3.6';

/** Render the status page. Redis and interprocess fields are 0 (Herald has no such parts here). */
export async function stubStatus(core: HeraldCore, subscribers: number): Promise<string> {
  const stats = core.stats();
  const channels = await core.channels('', 1_000_000);
  const stored = channels.reduce((n, c) => n + c.buffered, 0);
  const mem = process.memoryUsage();
  return [
    `total published messages: ${stats.published}`,
    `stored messages: ${stored}`,
    `shared memory used: ${Math.round(mem.heapUsed / 1024)}K`,
    `shared memory limit: ${Math.round(mem.heapTotal / 1024)}K`,
    `channels: ${channels.length}`,
    `subscribers: ${subscribers}`,
    'redis pending commands: 0',
    'redis connected servers: 0',
    'redis unhealthy upstreams: 0',
    'total redis commands sent: 0',
    'total interprocess alerts received: 0',
    'interprocess alerts in transit: 0',
    'interprocess queued alerts: 0',
    'total interprocess send delay: 0',
    'total interprocess receive delay: 0',
    `nchan version: ${NCHAN_COMPAT_VERSION}`,
    '',
  ].join('\n');
}
