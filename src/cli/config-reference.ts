/**
 * docs/configuration.md, generated from the option table (`npm run docs:config`; a unit test
 * fails when the page is stale), so the reference cannot drift from what the server accepts.
 */
import { z } from 'zod';
import { envName, flagName, OPTIONS, type OptionSpec } from '../core/config.js';
import { optionKind } from './config-sources.js';

/** Section titles by the first segment of option paths ("" = top-level options). */
const SECTIONS: Record<string, string> = {
  '': 'General',
  auth: 'Connection tokens (`auth`)',
  channels: 'Default channel policy (`channels`)',
  namespaces: 'Namespaces',
  limits: 'Limits (`limits`)',
  timing: 'Timing (`timing`)',
  nchan: 'Nchan-compatible front (`nchan`)',
  im: 'IM (`im`)',
  stomp: 'STOMP front (`stomp`)',
  redis: 'Redis (`redis`)',
  database: 'PostgreSQL IM store (`database`)',
  backend: 'Backend hooks and webhooks (`backend`)',
  cluster: 'Cluster (`cluster`)',
  dispatch: 'Dispatcher (`dispatch`)',
  workers: 'Workers',
  web: 'Web pages (`web`)',
};

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

/** The option's type for the table: its kind, or its values for an enumeration. */
function typeOf(o: OptionSpec): string {
  let s: z.ZodType = o.schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault) s = s.unwrap() as z.ZodType;
  return s instanceof z.ZodEnum ? (s.options as string[]).map((v) => `\`${v}\``).join(' / ') : optionKind(o);
}

function row(o: OptionSpec): string {
  const kind = optionKind(o);
  const def = o.default === undefined ? '—' : `\`${JSON.stringify(o.default)}\``;
  const flag = kind === 'boolean' ? `\`${flagName(o.path)}\`, \`${flagName(o.path).replace('--', '--no-')}\`` : `\`${flagName(o.path)}\``;
  return `| \`${o.path}\` | ${flag} | \`${envName(o.path)}\` | ${cell(typeOf(o))} | ${cell(def)} | ${cell(o.doc)} |`;
}

/** The Markdown of docs/configuration.md. */
export function configReference(): string {
  const groups = new Map<string, OptionSpec[]>();
  for (const o of OPTIONS) {
    const key = o.path.includes('.') ? o.path.slice(0, o.path.indexOf('.')) : SECTIONS[o.path] ? o.path : '';
    groups.set(key, [...(groups.get(key) ?? []), o]);
  }
  const out = [
    '# Configuration reference',
    '',
    '<!-- Generated from the option table in src/core/config.ts by `npm run docs:config`; do not edit by hand. -->',
    '',
    'Every option can be set in a JSON file (`--config herald.json`, nested by the dots of its path),',
    'an environment variable or a command-line flag. Later sources win: defaults ← file ← environment',
    '← flags. The configuration is validated once at start; every problem is reported at once and',
    'the process exits with code 2. Unknown keys, variables and flags are reported with the closest',
    'known name.',
    '',
    '- Durations are integer milliseconds (`…Ms`), sizes bytes (`…Bytes`).',
    '- Booleans: `--flag` alone is true, `--no-flag` false; `true/false`, `1/0`, `yes/no`, `on/off` are',
    '  accepted as values, in flags and in variables.',
    '- Lists and objects (type json) are JSON text in flags and variables.',
    '- `--redis` and `--database` are short for `--redis.url` and `--database.url`.',
    '',
  ];
  for (const [key, options] of groups) {
    out.push(`## ${SECTIONS[key] ?? key}`, '', '| Option | Flag | Environment | Type | Default | Meaning |', '|---|---|---|---|---|---|');
    for (const o of options) out.push(row(o));
    out.push('');
  }
  return out.join('\n');
}
