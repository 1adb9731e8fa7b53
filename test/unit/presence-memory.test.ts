import { MemoryPresence } from '../../src/engines/presence-memory.js';
import { presenceSuite } from './presence.suite.js';

presenceSuite('memory', { create: () => new MemoryPresence(), distributed: false });
