/**
 * `herald --help` and the per-command help (`herald dispatch --help`, `herald token --help`),
 * generated from the option table so it lists every option with its flag, variable and default.
 */
import { envName, flagName, OPTIONS, type OptionSpec } from '../core/config.js';
import type { CommandFlag } from './config-sources.js';
import { optionKind } from './config-sources.js';

/** The commands of the `herald` binary. */
export const COMMANDS = ['serve', 'dispatch', 'token'] as const;
/** One command of the `herald` binary. */
export type Command = (typeof COMMANDS)[number];

/** The flags of `herald token` (besides the configuration, read for `auth.hmacSecret`). */
export const TOKEN_FLAGS: readonly CommandFlag[] = [
  { name: 'user', type: 'string', doc: 'User id, the `sub` claim (required)' },
  { name: 'channels', type: 'string', doc: 'Comma-separated channels the token grants (`channels` claim; `chat:*` matches a prefix); default: no restriction' },
  { name: 'name', type: 'string', doc: 'Display name (`name` claim)' },
  { name: 'ttl', type: 'string', doc: 'Lifetime in seconds (default 86400)' },
];

/** Options the dispatcher reads; the others are accepted (a shared config file) and ignored. */
const DISPATCH_OPTIONS = ['host', 'port', 'logLevel', 'logFormat', 'redis.url', 'redis.prefix', 'dispatch.strategy', 'dispatch.backups'];

const GENERAL = [
  'General:',
  '  -c, --config <file>   JSON config file (layered: defaults < file < env < flags)',
  '  -h, --help            Show this help (herald <command> --help for one command)',
  '  -v, --version         Show the version',
];

function describe(o: OptionSpec): string[] {
  const def = o.default === undefined ? '(none)' : JSON.stringify(o.default);
  const negate = optionKind(o) === 'boolean' ? `, ${flagName(o.path).replace('--', '--no-')}` : '';
  return [`  ${flagName(o.path)}${negate}  /  ${envName(o.path)}  [${def}]`, `      ${o.doc}`];
}

/** Help text of a command (`undefined` = the whole binary: commands and every option). */
export function helpText(command?: Command): string {
  if (command === 'token') {
    return [
      'Usage: herald token --user <id> [--channels a,b] [--name <text>] [--ttl <seconds>]',
      '',
      'Print a connection token (HS256 JWT) signed with auth.hmacSecret, for development and tests.',
      'The secret comes from the usual sources: --auth.hmac-secret, HERALD_AUTH_HMAC_SECRET or --config.',
      '',
      'Options:',
      ...TOKEN_FLAGS.map((f) => `  --${f.name}${f.type === 'string' ? ' <value>' : ''}`.padEnd(24) + f.doc),
      ...describe(OPTIONS.find((o) => o.path === 'auth.hmacSecret')!),
      '',
      ...GENERAL,
    ].join('\n');
  }
  if (command === 'dispatch') {
    return [
      'Usage: herald dispatch --redis <url> [options]',
      '',
      'Run the dispatcher: GET /dispatch?user=… answers a live node and backups, read from the',
      'Redis node registry; GET /health, GET /ready and GET /metrics as on a node.',
      '',
      ...GENERAL,
      '',
      'Options (flag / environment variable, default); other options are accepted and ignored:',
      ...OPTIONS.filter((o) => DISPATCH_OPTIONS.includes(o.path)).flatMap(describe),
    ].join('\n');
  }
  return [
    command === 'serve' ? 'Usage: herald serve [options]' : 'Usage: herald [serve|dispatch|token] [options]',
    '',
    'Herald: real-time push and Web-IM server.',
    '',
    'Commands:',
    '  serve                 Run a server (default); --workers N for N processes on one port',
    '  dispatch              Run the dispatcher: GET /dispatch?user=… → a live node (needs --redis)',
    '  token                 Print a development connection token (herald token --help)',
    '',
    ...GENERAL,
    '',
    'Options (flag / environment variable, default):',
    ...OPTIONS.flatMap(describe),
  ].join('\n');
}
