/** A pino-shaped logger. Core takes one and defaults to silence; the CLI plugs in pino. */

/** Log method: structured fields first, then a message. */
export type LogFn = (obj: object | string, msg?: string) => void;

/** The subset of pino Herald uses. */
export interface Logger {
  fatal: LogFn;
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  child(bindings: object): Logger;
}

const noop: LogFn = () => undefined;

/** A logger that drops everything. */
export const SILENT_LOGGER: Logger = {
  fatal: noop,
  error: noop,
  warn: noop,
  info: noop,
  debug: noop,
  trace: noop,
  child: () => SILENT_LOGGER,
};
