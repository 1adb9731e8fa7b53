/**
 * STOMP 1.2 frame codec (no I/O). A frame is
 *
 *     COMMAND EOL (name:value EOL)* EOL body NUL (EOL)*
 *
 * with EOL = `\n` or `\r\n`. Header names and values are UTF-8 and escaped (`\r` `\n` `\c` `\\`)
 * in every frame except CONNECT and CONNECTED; an undefined escape is a protocol error. When a
 * header repeats, the first occurrence wins. With `content-length` the body is exactly that
 * many bytes and must be followed by NUL; without it the body ends at the first NUL. EOLs
 * between frames are heart-beats.
 *
 * Over WebSocket every message carries whole frames (one or several, plus heart-beat EOLs): a
 * frame cut at the end of a message is reported as malformed, never waited for.
 */

/** Commands a client may send. */
export const CLIENT_COMMANDS: ReadonlySet<string> = new Set([
  'CONNECT',
  'STOMP',
  'SEND',
  'SUBSCRIBE',
  'UNSUBSCRIBE',
  'ACK',
  'NACK',
  'BEGIN',
  'COMMIT',
  'ABORT',
  'DISCONNECT',
]);

/** Commands whose headers are never escaped (STOMP 1.2 §"Value Encoding"). */
const RAW_HEADER_COMMANDS: ReadonlySet<string> = new Set(['CONNECT', 'CONNECTED']);

/** One decoded frame. */
export interface StompFrame {
  readonly command: string;
  /** Header values by name; the first occurrence of a repeated header wins. */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

/** Size limits applied while parsing. */
export interface ParseLimits {
  /** Largest frame (command, headers and body), bytes. */
  readonly maxFrameBytes: number;
  /** Most header lines in one frame. */
  readonly maxHeaders: number;
}

/** What one WebSocket message held. */
export interface ParseResult {
  /** Frames decoded before the end of the data or before the first error, in order. */
  readonly frames: StompFrame[];
  /** Heart-beat EOLs seen. */
  readonly heartbeats: number;
  /** Why parsing stopped early; frames after the error are not decoded. */
  readonly error?: string;
}

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const COLON = 0x3a;
const COMMAND_RE = /^[A-Z]{1,16}$/;
const CONTENT_LENGTH_RE = /^\d{1,10}$/;

/** Thrown inside the parser; turned into `ParseResult.error`. */
class FrameError extends Error {}

/** Decode every frame of one WebSocket message. Never throws. */
export function parseFrames(data: Buffer, limits: ParseLimits): ParseResult {
  const frames: StompFrame[] = [];
  let heartbeats = 0;
  let i = 0;
  try {
    while (i < data.length) {
      // Heart-beats and the optional EOLs after a frame's NUL.
      if (data[i] === LF) {
        heartbeats++;
        i++;
        continue;
      }
      if (data[i] === CR && data[i + 1] === LF) {
        heartbeats++;
        i += 2;
        continue;
      }
      const { frame, end } = parseFrame(data, i, limits);
      frames.push(frame);
      i = end;
    }
  } catch (err) {
    if (!(err instanceof FrameError)) throw err;
    return { frames, heartbeats, error: err.message };
  }
  return { frames, heartbeats };
}

/** Decode the frame starting at `start`; returns it and the index just past its NUL. */
function parseFrame(data: Buffer, start: number, limits: ParseLimits): { frame: StompFrame; end: number } {
  const limit = start + limits.maxFrameBytes;
  let i = start;
  const readLine = (): string => {
    const nl = data.indexOf(LF, i);
    if (nl === -1 || nl >= limit) {
      throw new FrameError(nl === -1 ? 'Incomplete frame: end of line expected' : `Frame larger than ${limits.maxFrameBytes} bytes`);
    }
    const stop = nl > i && data[nl - 1] === CR ? nl - 1 : nl;
    const line = data.toString('utf8', i, stop);
    i = nl + 1;
    return line;
  };

  const command = readLine();
  if (!COMMAND_RE.test(command) || !CLIENT_COMMANDS.has(command)) {
    throw new FrameError(`Unknown command: ${printable(command)}`);
  }
  const raw = RAW_HEADER_COMMANDS.has(command);
  const headers = new Map<string, string>();
  let count = 0;
  for (;;) {
    const line = readLine();
    if (line === '') break;
    if (++count > limits.maxHeaders) throw new FrameError(`More than ${limits.maxHeaders} headers`);
    const colon = line.indexOf(String.fromCharCode(COLON));
    if (colon <= 0) throw new FrameError(`Malformed header line: ${printable(line)}`);
    const name = raw ? line.slice(0, colon) : unescapeHeader(line.slice(0, colon));
    const value = raw ? line.slice(colon + 1) : unescapeHeader(line.slice(colon + 1));
    if (!headers.has(name)) headers.set(name, value);
  }

  const lengthText = headers.get('content-length');
  let bodyEnd: number;
  if (lengthText !== undefined) {
    if (!CONTENT_LENGTH_RE.test(lengthText)) throw new FrameError(`Invalid content-length: ${printable(lengthText)}`);
    const length = Number(lengthText);
    bodyEnd = i + length;
    if (bodyEnd >= limit) throw new FrameError(`Frame larger than ${limits.maxFrameBytes} bytes`);
    if (bodyEnd >= data.length) throw new FrameError('Incomplete frame: body shorter than content-length');
    if (data[bodyEnd] !== NUL) throw new FrameError('content-length mismatch: no NUL after the body');
  } else {
    bodyEnd = data.indexOf(NUL, i);
    if (bodyEnd === -1 || bodyEnd >= limit) {
      if (data.length - start > limits.maxFrameBytes) throw new FrameError(`Frame larger than ${limits.maxFrameBytes} bytes`);
      throw new FrameError('Incomplete frame: missing NUL terminator');
    }
  }
  // A copy, so a retained body (queued message) does not pin the whole WebSocket message.
  const body = bodyEnd > i ? Buffer.from(data.subarray(i, bodyEnd)) : EMPTY;
  return { frame: { command, headers, body }, end: bodyEnd + 1 };
}

const EMPTY = Buffer.alloc(0);

/** Undo STOMP 1.2 header escaping; throws on an undefined escape. */
export function unescapeHeader(text: string): string {
  if (!text.includes('\\')) return text;
  let out = '';
  for (let k = 0; k < text.length; k++) {
    const c = text[k];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const n = text[++k];
    if (n === 'r') out += '\r';
    else if (n === 'n') out += '\n';
    else if (n === 'c') out += ':';
    else if (n === '\\') out += '\\';
    else throw new FrameError(`Invalid escape sequence in header: \\${n === undefined ? '' : printable(n)}`);
  }
  return out;
}

const NEEDS_ESCAPE_RE = /[\\\r\n:]/;
const ESCAPE_RE = /[\\\r\n:]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\r': '\\r', '\n': '\\n', ':': '\\c' };

/** Apply STOMP 1.2 header escaping. */
export function escapeHeader(text: string): string {
  return NEEDS_ESCAPE_RE.test(text) ? text.replace(ESCAPE_RE, (c) => ESCAPES[c]!) : text;
}

/**
 * Encode a frame. Headers are escaped except in CONNECTED; `content-length` is added when
 * there is a body (and must not be given).
 */
export function encodeFrame(command: string, headers: ReadonlyArray<readonly [string, string]>, body?: Buffer | string): Buffer {
  const raw = RAW_HEADER_COMMANDS.has(command);
  const bytes = body === undefined ? EMPTY : typeof body === 'string' ? Buffer.from(body) : body;
  let head = command + '\n';
  for (const [name, value] of headers) head += raw ? `${name}:${value}\n` : `${escapeHeader(name)}:${escapeHeader(value)}\n`;
  if (bytes.length > 0) head += `content-length:${bytes.length}\n`;
  head += '\n';
  const headBytes = Buffer.from(head);
  const out = Buffer.allocUnsafe(headBytes.length + bytes.length + 1);
  headBytes.copy(out, 0);
  bytes.copy(out, headBytes.length);
  out[out.length - 1] = NUL;
  return out;
}

/** At most 64 characters, control characters shown as `?` (for error messages). */
function printable(text: string): string {
  return text.slice(0, 64).replace(/[\x00-\x1f\x7f]/g, '?');
}
