import { MemoryResumptions } from '../../src/engines/resumptions-memory.js';
import { resumptionsSuite } from './resumptions.suite.js';

/** One process: every store of a space is the same store. */
const stores = new Map<string, MemoryResumptions>();
resumptionsSuite('memory', {
  distributed: false,
  create: (space) => {
    let s = stores.get(space);
    if (!s) stores.set(space, (s = new MemoryResumptions()));
    return s;
  },
  cleanup: async (space) => {
    stores.delete(space);
  },
});
