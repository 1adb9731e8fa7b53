/**
 * Human-readable logs for development: pino writes its JSON lines to this destination, which
 * prints `12:03:04 INFO  message  key=value …` (coloured on a terminal) to stdout.
 */

const LEVELS: Record<number, [string, string]> = {
  10: ['TRACE', '\x1b[90m'],
  20: ['DEBUG', '\x1b[36m'],
  30: ['INFO ', '\x1b[32m'],
  40: ['WARN ', '\x1b[33m'],
  50: ['ERROR', '\x1b[31m'],
  60: ['FATAL', '\x1b[35m'],
};
/** Fields every line has; not repeated as key=value. */
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname']);

/** Format one pino JSON line; lines that are not JSON pass through unchanged. */
export function formatLine(line: string, colour: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const [name, code] = LEVELS[rec.level as number] ?? ['LOG  ', ''];
  const time = new Date(typeof rec.time === 'number' ? rec.time : Date.now()).toTimeString().slice(0, 8);
  const fields = Object.entries(rec)
    .filter(([k]) => !OMIT.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const level = colour ? `${code}${name}\x1b[0m` : name;
  return `${time} ${level} ${String(rec.msg ?? '')}${fields ? `  ${colour ? `\x1b[90m${fields}\x1b[0m` : fields}` : ''}\n`;
}

/** A pino destination that writes formatted lines to `out`. */
export function prettyDestination(out: NodeJS.WriteStream = process.stdout): { write(chunk: string): void } {
  const colour = out.isTTY === true;
  return {
    write(chunk: string): void {
      for (const line of chunk.split('\n')) if (line) out.write(formatLine(line, colour));
    },
  };
}
