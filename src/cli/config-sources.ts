/**
 * Configuration sources for the CLI: a JSON file (`--config`), `HERALD_*` environment variables
 * and command-line flags, layered in that order over the defaults. Each source reports every
 * problem it finds once; a value that does not parse is left out of its layer, so the schema
 * does not report it a second time.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { type ConfigInput, envName, flagName, OPTIONS, type OptionSpec, setPath } from '../core/config.js';
import { closest, didYouMean } from './suggest.js';

/** How an option's text value (env variable, flag) is read. */
export type OptionKind = 'boolean' | 'number' | 'json' | 'string';

/** The kind of an option, read from its schema (so options without a default parse too). */
export function optionKind(option: OptionSpec): OptionKind {
  let s: z.ZodType = option.schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable) s = s.unwrap() as z.ZodType;
  if (s instanceof z.ZodBoolean) return 'boolean';
  if (s instanceof z.ZodNumber) return 'number';
  if (s instanceof z.ZodArray || s instanceof z.ZodObject || s instanceof z.ZodRecord) return 'json';
  return 'string';
}

const TRUE_WORDS = ['true', '1', 'yes', 'on'];
const FALSE_WORDS = ['false', '0', 'no', 'off'];

/** Parse a text value for an option; undefined (and one problem) when it does not parse. */
function parseValue(option: OptionSpec, text: string, problems: string[], where: string): unknown {
  switch (optionKind(option)) {
    case 'number': {
      const n = Number(text);
      if (text.trim() !== '' && Number.isFinite(n)) return n;
      problems.push(`${where}: expected a number, got "${text}"`);
      return undefined;
    }
    case 'boolean':
      if (TRUE_WORDS.includes(text.toLowerCase())) return true;
      if (FALSE_WORDS.includes(text.toLowerCase())) return false;
      problems.push(`${where}: expected true or false, got "${text}"`);
      return undefined;
    case 'json':
      try {
        return JSON.parse(text);
      } catch {
        problems.push(`${where}: expected JSON, got "${text.slice(0, 40)}"`);
        return undefined;
      }
    default:
      return text;
  }
}

/**
 * Config layer from `HERALD_*` environment variables. A `HERALD_*` variable that names no option
 * is reported in `warnings` (other tools may share the prefix), with the closest name.
 */
export function envLayer(env: NodeJS.ProcessEnv, problems: string[], warnings: string[] = []): ConfigInput {
  const out: ConfigInput = {};
  const known = new Set<string>();
  for (const o of OPTIONS) {
    const name = envName(o.path);
    known.add(name);
    const v = env[name];
    if (v === undefined) continue;
    const value = parseValue(o, v, problems, name);
    if (value !== undefined) setPath(out, o.path, value);
  }
  for (const name of Object.keys(env)) {
    if (!name.startsWith('HERALD_') || known.has(name)) continue;
    const near = closest(name, known);
    if (near) warnings.push(`${name} is not a Herald option; did you mean ${near}?`);
  }
  return out;
}

/** Short flags for common options. */
const FLAG_ALIASES: Record<string, string> = { redis: 'redis.url', database: 'database.url' };

/** A flag of one command that is not a configuration option (e.g. `herald token --user`). */
export interface CommandFlag {
  readonly name: string;
  readonly type: 'string' | 'boolean';
  readonly doc: string;
}

/** Result of parsing command-line arguments. */
export interface ParsedArgs {
  readonly layer: ConfigInput;
  readonly configFile?: string;
  readonly help: boolean;
  readonly version: boolean;
  /** Values of the command's own flags, by name. */
  readonly flags: Readonly<Record<string, string | boolean>>;
}

/**
 * Config layer and switches from command-line arguments (after the command word), tokenized by
 * `node:util` parseArgs. Flags are `--path.in-kebab-case value` or `=value`; a boolean flag alone
 * means true, `--no-<flag>` false, and `--flag true|false|…` is accepted too. Unknown flags and
 * stray arguments are reported with the closest known flag.
 */
export function argsLayer(argv: readonly string[], problems: string[], commandFlags: readonly CommandFlag[] = []): ParsedArgs {
  const byFlag = new Map<string, OptionSpec>(OPTIONS.map((o) => [flagName(o.path).slice(2), o]));
  for (const [alias, path] of Object.entries(FLAG_ALIASES))
    byFlag.set(
      alias,
      OPTIONS.find((o) => o.path === path)!,
    );
  const own = new Map(commandFlags.map((f) => [f.name, f]));
  const spec: Record<string, { type: 'string' | 'boolean'; short?: string }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean', short: 'v' },
    config: { type: 'string', short: 'c' },
  };
  for (const [name, o] of byFlag) spec[name] = { type: optionKind(o) === 'boolean' ? 'boolean' : 'string' };
  for (const f of commandFlags) spec[f.name] = { type: f.type };
  const known = Object.keys(spec).map((n) => `--${n}`);

  const { tokens } = parseArgs({ args: [...argv], options: spec, strict: false, allowPositionals: true, tokens: true });
  const layer: ConfigInput = {};
  const flags: Record<string, string | boolean> = {};
  let configFile: string | undefined;
  let help = false;
  let version = false;
  const consumed = new Set<number>();
  for (let t = 0; t < tokens.length; t++) {
    const token = tokens[t]!;
    if (token.kind === 'option-terminator') continue;
    if (token.kind === 'positional') {
      if (!consumed.has(token.index)) problems.push(`unexpected argument "${token.value}" (commands come first: herald <command> [options])`);
      continue;
    }
    const flag = token.rawName;
    // A boolean flag may be followed by an explicit true/false word.
    const next = tokens[t + 1];
    const word = (): string | undefined => {
      if (token.value !== undefined) return token.value;
      if (next?.kind === 'positional' && next.index === token.index + 1 && [...TRUE_WORDS, ...FALSE_WORDS].includes(next.value.toLowerCase())) {
        consumed.add(next.index);
        return next.value;
      }
      return undefined;
    };
    const needValue = (): string | undefined => {
      if (token.value === undefined || (!token.inlineValue && token.value.startsWith('--'))) {
        problems.push(`${flag}: needs a value`);
        return undefined;
      }
      return token.value;
    };
    if (token.name === 'help') help = true;
    else if (token.name === 'version') version = true;
    else if (token.name === 'config') configFile = needValue();
    else if (own.has(token.name)) {
      const f = own.get(token.name)!;
      const v = f.type === 'boolean' ? (word() ?? 'true') : needValue();
      if (v !== undefined) flags[f.name] = f.type === 'boolean' ? TRUE_WORDS.includes(v.toLowerCase()) : v;
    } else if (byFlag.has(token.name)) {
      const o = byFlag.get(token.name)!;
      const text = optionKind(o) === 'boolean' ? (word() ?? 'true') : needValue();
      const value = text === undefined ? undefined : parseValue(o, text, problems, flag);
      if (value !== undefined) setPath(layer, o.path, value);
    } else if (token.name.startsWith('no-') && byFlag.has(token.name.slice(3)) && optionKind(byFlag.get(token.name.slice(3))!) === 'boolean') {
      if (token.value !== undefined) problems.push(`${flag}: takes no value`);
      else setPath(layer, byFlag.get(token.name.slice(3))!.path, false);
    } else {
      problems.push(`${flag}: unknown option${didYouMean(flag.startsWith('--') ? flag : `--${token.name}`, known)} (see herald --help)`);
      // Its value, if one follows, is not a stray argument of its own.
      if (token.value === undefined && next?.kind === 'positional' && next.index === token.index + 1) consumed.add(next.index);
    }
  }
  return { layer, configFile, help, version, flags };
}

/**
 * Remove the keys of a config object that name no option, reporting each with the closest
 * option path (the schema would reject them too, without a suggestion).
 */
function dropUnknownKeys(obj: ConfigInput, prefix: string, problems: string[], where: string): void {
  const paths: readonly string[] = OPTIONS.map((o) => o.path);
  for (const key of Object.keys(obj)) {
    const path = prefix + key;
    if (paths.includes(path)) continue;
    const value = obj[key];
    if (paths.some((p) => p.startsWith(`${path}.`)) && typeof value === 'object' && value !== null && !Array.isArray(value)) {
      dropUnknownKeys(value as ConfigInput, `${path}.`, problems, where);
      continue;
    }
    problems.push(`${where}: ${path}: unknown option${didYouMean(path, paths)}`);
    delete obj[key];
  }
}

/** Config layer from a JSON file. */
export function fileLayer(path: string, problems: string[]): ConfigInput {
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    problems.push(`${path}: ${(err as Error).message}`);
    return {};
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    problems.push(`${path}: the config file must hold a JSON object`);
    return {};
  }
  dropUnknownKeys(v as ConfigInput, '', problems, path);
  return v as ConfigInput;
}
