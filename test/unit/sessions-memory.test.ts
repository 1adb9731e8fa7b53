import { MemorySessions } from '../../src/engines/sessions-memory.js';
import { sessionsSuite } from './sessions.suite.js';

sessionsSuite('memory', { create: () => new MemorySessions(), distributed: false });
