import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { SqliteImStore } from '../../src/engines/store-sqlite.js';
import { imStoreSuite } from './im-store.suite.js';

const dir = mkdtempSync(join(tmpdir(), 'herald-im-store-'));
let n = 0;
after(() => rmSync(dir, { recursive: true, force: true }));

imStoreSuite('sqlite', async () => new SqliteImStore({ path: join(dir, `s${n++}.db`) }));
