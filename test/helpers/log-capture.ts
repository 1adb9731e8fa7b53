/**
 * A pino-shaped logger that keeps what it is given, for tests of what the server logs. Every
 * level is recorded (the level filter is the test's own); `child()` adds its bindings.
 */
import type { Logger } from '../../src/core/logger.js';

/** One log call: its level, message and structured fields. */
export interface LogEntry {
  readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  readonly msg: string;
  readonly [field: string]: unknown;
}

/** A logger recording into `entries` (shared with its children). */
export function captureLogger(entries: LogEntry[] = [], bindings: object = {}): Logger & { entries: LogEntry[] } {
  const at =
    (level: LogEntry['level']) =>
    (obj: object | string, msg?: string): void => {
      entries.push(typeof obj === 'string' ? { ...bindings, level, msg: obj } : { ...bindings, ...obj, level, msg: msg ?? '' });
    };
  return {
    entries,
    fatal: at('fatal'),
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    trace: at('trace'),
    child: (more: object) => captureLogger(entries, { ...bindings, ...more }),
  };
}
