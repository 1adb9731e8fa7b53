import { after } from 'node:test';
import { RedisSessions } from '../../src/engines/sessions-redis.js';
import { sessionsSuite } from '../unit/sessions.suite.js';
import { deleteKeys, SHARED_REDIS_URL, testPrefix } from './redis.js';

const runPrefix = testPrefix('sessions');
after(async () => {
  await deleteKeys(SHARED_REDIS_URL, runPrefix);
});

sessionsSuite('redis', {
  distributed: true,
  create: (space, ttlMs) => new RedisSessions({ url: SHARED_REDIS_URL, prefix: `${runPrefix}${space}:`, ttlMs }),
  cleanup: async (space) => {
    await deleteKeys(SHARED_REDIS_URL, `${runPrefix}${space}:`);
  },
});
