/** The presence engine suite over Redis: engines of one key prefix stand for nodes of one cluster. */
import { after } from 'node:test';
import { RedisPresence } from '../../src/engines/presence-redis.js';
import { presenceSuite } from '../unit/presence.suite.js';
import { deleteKeys, SHARED_REDIS_URL, testPrefix } from './redis.js';

const runPrefix = testPrefix('presence');
after(async () => {
  await deleteKeys(SHARED_REDIS_URL, runPrefix);
});

presenceSuite('redis', {
  distributed: true,
  create: (space, ttlMs) => new RedisPresence({ url: SHARED_REDIS_URL, prefix: `${runPrefix}${space}:`, ttlMs }),
  cleanup: async (space) => {
    await deleteKeys(SHARED_REDIS_URL, `${runPrefix}${space}:`);
  },
});
