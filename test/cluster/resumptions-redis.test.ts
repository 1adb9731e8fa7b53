import { after } from 'node:test';
import { RedisResumptions } from '../../src/engines/resumptions-redis.js';
import { resumptionsSuite } from '../unit/resumptions.suite.js';
import { deleteKeys, SHARED_REDIS_URL, testPrefix } from './redis.js';

const runPrefix = testPrefix('resumptions');
after(async () => {
  await deleteKeys(SHARED_REDIS_URL, runPrefix);
});

resumptionsSuite('redis', {
  distributed: true,
  create: (space) => new RedisResumptions({ url: SHARED_REDIS_URL, prefix: `${runPrefix}${space}:` }),
  cleanup: async (space) => {
    await deleteKeys(SHARED_REDIS_URL, `${runPrefix}${space}:`);
  },
});
