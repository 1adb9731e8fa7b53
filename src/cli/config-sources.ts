/**
 * Configuration sources for the CLI: a JSON file (`--config`), `HERALD_*` environment variables
 * and command-line flags, layered in that order over the defaults.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { type ConfigInput, envName, flagName, OPTIONS, type OptionSpec, setPath } from '../core/config.js';

/** Whether an option takes true/false (its default is boolean, or its schema is an optional boolean). */
function isBooleanOption(option: OptionSpec): boolean {
  const s = option.schema;
  return typeof option.default === 'boolean' || (s instanceof z.ZodOptional && s.unwrap() instanceof z.ZodBoolean);
}

/** Parse a text value for an option, guided by its default's type. */
function parseValue(option: OptionSpec, text: string, problems: string[], where: string): unknown {
  const def = option.default;
  if (typeof def === 'number') {
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n)) problems.push(`${where}: expected a number, got "${text}"`);
    return n;
  }
  if (isBooleanOption(option)) {
    if (['true', '1', 'yes', 'on', ''].includes(text)) return true;
    if (['false', '0', 'no', 'off'].includes(text)) return false;
    problems.push(`${where}: expected true or false, got "${text}"`);
    return text;
  }
  if (Array.isArray(def)) {
    try {
      return JSON.parse(text);
    } catch {
      problems.push(`${where}: expected JSON, got "${text.slice(0, 40)}"`);
      return text;
    }
  }
  return text;
}

/** Config layer from `HERALD_*` environment variables. */
export function envLayer(env: NodeJS.ProcessEnv, problems: string[]): ConfigInput {
  const out: ConfigInput = {};
  for (const o of OPTIONS) {
    const name = envName(o.path);
    const v = env[name];
    if (v !== undefined) setPath(out, o.path, parseValue(o, v, problems, name));
  }
  return out;
}

/** Short flags for common options. */
const FLAG_ALIASES: Record<string, string> = { '--redis': '--redis.url', '--database': '--database.url' };

/** Result of parsing command-line arguments. */
export interface ParsedArgs {
  readonly layer: ConfigInput;
  readonly configFile?: string;
  readonly help: boolean;
  readonly version: boolean;
  readonly positional: string[];
}

/** Config layer and switches from command-line arguments. Unknown flags are reported as problems. */
export function argsLayer(argv: readonly string[], problems: string[]): ParsedArgs {
  const byFlag = new Map(OPTIONS.map((o) => [flagName(o.path), o]));
  const layer: ConfigInput = {};
  const positional: string[] = [];
  let configFile: string | undefined;
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (flag === '--help') help = true;
    else if (flag === '--version') version = true;
    else if (flag === '--config') configFile = value ?? argv[++i];
    else {
      const o = byFlag.get(FLAG_ALIASES[flag] ?? flag);
      if (!o) {
        problems.push(`${flag}: unknown option (see herald --help)`);
        continue;
      }
      if (value === undefined) {
        const next = argv[i + 1];
        if (isBooleanOption(o) && (next === undefined || next.startsWith('--') || !/^(true|false|1|0|yes|no|on|off)$/.test(next))) value = 'true';
        else value = argv[++i];
      }
      if (value === undefined) problems.push(`${flag}: needs a value`);
      else setPath(layer, o.path, parseValue(o, value, problems, flag));
    }
  }
  return { layer, configFile, help, version, positional };
}

/** Config layer from a JSON file. */
export function fileLayer(path: string, problems: string[]): ConfigInput {
  try {
    const v: unknown = JSON.parse(readFileSync(path, 'utf8'));
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      problems.push(`${path}: the config file must hold a JSON object`);
      return {};
    }
    return v as ConfigInput;
  } catch (err) {
    problems.push(`${path}: ${(err as Error).message}`);
    return {};
  }
}

/** `herald --help` text, listing every option with its flag, env variable and default. */
export function helpText(): string {
  const lines = [
    'Usage: herald serve [options]',
    '',
    'Herald: real-time push and Web-IM server.',
    '',
    'Commands:',
    '  serve                 Run a server (default); --workers N for N processes on one port',
    '  dispatch              Run the dispatcher: GET /dispatch?user=… → a live node (needs --redis)',
    '',
    'General:',
    '  --config <file>       JSON config file (layered: defaults < file < env < flags)',
    '  --help                Show this help',
    '  --version             Show the version',
    '',
    'Options (flag / environment variable, default):',
  ];
  for (const o of OPTIONS) {
    const def = o.default === undefined ? '(none)' : JSON.stringify(o.default);
    lines.push(`  ${flagName(o.path)}  /  ${envName(o.path)}  [${def}]`);
    lines.push(`      ${o.doc}`);
  }
  return lines.join('\n');
}
