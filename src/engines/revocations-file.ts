/**
 * Revocations of a single node kept in a JSON file in the data directory
 * (`<dataDir>/revocations.json`), so a restart does not bring revoked tokens back. Each save
 * writes a temporary file, fsyncs it and renames it over the old one: a crash leaves either the
 * old or the new list, never half of one.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RevocationSnapshot, RevocationStore } from '../core/revocation.js';

/** A RevocationStore in one JSON file. */
export class FileRevocationStore implements RevocationStore {
  readonly #path: string;

  constructor(path: string) {
    this.#path = path;
  }

  load(): RevocationSnapshot | undefined {
    let text: string;
    try {
      text = readFileSync(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    const v = JSON.parse(text) as Partial<RevocationSnapshot>;
    const pairs = (x: unknown): Array<[string, number]> =>
      Array.isArray(x) ? x.filter((p): p is [string, number] => Array.isArray(p) && typeof p[0] === 'string' && typeof p[1] === 'number') : [];
    return { jti: pairs(v.jti), before: pairs(v.before) };
  }

  save(snapshot: RevocationSnapshot): void {
    mkdirSync(dirname(this.#path), { recursive: true });
    const tmp = `${this.#path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(snapshot));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.#path);
  }
}
