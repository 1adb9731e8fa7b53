// Writes docs/configuration.md from the option table (npm run docs:config).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configReference } from '../src/cli/config-reference.js';

writeFileSync(join(import.meta.dirname, '..', 'docs', 'configuration.md'), configReference());
