import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { argsLayer, envLayer, fileLayer } from '../../src/cli/config-sources.js';
import { ConfigError, envName, flagName, isLoopbackHost, OPTIONS, resolveConfig } from '../../src/core/config.js';

function problemsOf(fn: () => unknown): readonly string[] {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
}

describe('resolveConfig', () => {
  test('fills every default and returns a deeply frozen config', () => {
    const c = resolveConfig();
    assert.equal(c.port, 8080);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.timing.pingIntervalMs, 25_000);
    assert.equal(c.channels.historySize, 100);
    assert.deepEqual(c.namespaces, []);
    assert.ok(Object.isFrozen(c));
    assert.ok(Object.isFrozen(c.limits));
    assert.throws(() => {
      (c.limits as { maxConnections: number }).maxConnections = 1;
    }, TypeError);
  });

  test('later layers override earlier ones, nested objects merge, arrays replace', () => {
    const c = resolveConfig(
      { port: 1, timing: { pingIntervalMs: 1_000 }, namespaces: [{ name: 'a' }, { name: 'b' }] },
      { port: 2, timing: { connectTimeoutMs: 500 } },
      { namespaces: [{ name: 'c', historySize: 5 }] },
    );
    assert.equal(c.port, 2);
    assert.equal(c.timing.pingIntervalMs, 1_000);
    assert.equal(c.timing.connectTimeoutMs, 500);
    assert.deepEqual(c.namespaces, [{ name: 'c', historySize: 5 }]);
  });

  test('reports every problem at once, including unknown keys at any depth', () => {
    const problems = problemsOf(() =>
      resolveConfig({
        port: -1,
        colour: 'red',
        limits: { maxConnections: 0, nope: 1 },
        timing: { pingIntervalMs: 'fast' },
        namespaces: [{ name: 'bad name' }],
      }),
    );
    const text = problems.join('\n');
    for (const needle of ['port', 'colour', 'limits.maxConnections', 'nope', 'timing.pingIntervalMs', 'namespaces.0.name']) {
      assert.ok(text.includes(needle), `missing ${needle} in ${text}`);
    }
    assert.ok(problems.length >= 6);
  });

  test('a host beyond loopback needs an apiKey; loopback hosts do not', () => {
    const problems = problemsOf(() => resolveConfig({ host: '0.0.0.0' }));
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /apiKey.*HERALD_API_KEY/);
    assert.equal(resolveConfig({ host: '0.0.0.0', apiKey: 'k'.repeat(16) }).host, '0.0.0.0');
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', 'localhost']) assert.equal(resolveConfig({ host }).host, host);
  });

  test('an apiKey shorter than 16 characters is rejected', () => {
    assert.match(problemsOf(() => resolveConfig({ apiKey: 'short' }))[0]!, /apiKey/);
  });

  test('isLoopbackHost recognises loopback addresses only', () => {
    assert.equal(isLoopbackHost('127.0.0.9'), true);
    assert.equal(isLoopbackHost('::1'), true);
    assert.equal(isLoopbackHost('0.0.0.0'), false);
    assert.equal(isLoopbackHost('10.0.0.1'), false);
    assert.equal(isLoopbackHost('::'), false);
  });
});

describe('option names', () => {
  test('envName and flagName derive from the option path', () => {
    assert.equal(envName('port'), 'HERALD_PORT');
    assert.equal(envName('limits.maxConnections'), 'HERALD_LIMITS_MAX_CONNECTIONS');
    assert.equal(envName('auth.hmacSecret'), 'HERALD_AUTH_HMAC_SECRET');
    assert.equal(flagName('limits.maxConnections'), '--limits.max-connections');
    assert.equal(flagName('apiKey'), '--api-key');
  });

  test('every option has a unique env name and flag, a doc line and a valid default', () => {
    assert.equal(new Set(OPTIONS.map((o) => envName(o.path))).size, OPTIONS.length);
    assert.equal(new Set(OPTIONS.map((o) => flagName(o.path))).size, OPTIONS.length);
    for (const o of OPTIONS) {
      assert.ok(o.doc.length > 5, o.path);
      if (o.default !== undefined) assert.equal(o.schema.safeParse(o.default).success, true, o.path);
    }
  });
});

describe('config sources', () => {
  test('env variables are parsed by the type of the option default', () => {
    const problems: string[] = [];
    const layer = envLayer({ HERALD_PORT: '9000', HERALD_DEV: 'true', HERALD_NAMESPACES: '[{"name":"n"}]', HERALD_HOST: '::1', OTHER: 'x' }, problems);
    assert.deepEqual(problems, []);
    assert.deepEqual(layer, { port: 9000, dev: true, namespaces: [{ name: 'n' }], host: '::1' });
  });

  test('bad env values are reported by variable name', () => {
    const problems: string[] = [];
    envLayer({ HERALD_PORT: 'abc', HERALD_DEV: 'maybe', HERALD_NAMESPACES: '[' }, problems);
    assert.equal(problems.length, 3);
    assert.match(problems.join('\n'), /HERALD_PORT.*HERALD_DEV.*HERALD_NAMESPACES/s);
  });

  test('flags take `--flag value` and `--flag=value`; a boolean flag alone means true; unknown flags are problems', () => {
    const problems: string[] = [];
    const a = argsLayer(['--port', '81', '--host=::1', '--dev', '--limits.max-connections', '5', '--config', 'x.json', '--bogus'], problems);
    assert.deepEqual(a.layer, { port: 81, host: '::1', dev: true, limits: { maxConnections: 5 } });
    assert.equal(a.configFile, 'x.json');
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /--bogus/);
    const b = argsLayer(['--dev', 'false', '--help'], []);
    assert.deepEqual(b.layer, { dev: false });
    assert.equal(b.help, true);
  });

  test('--no-<flag> sets a boolean false; -h and -c are short for --help and --config', () => {
    const problems: string[] = [];
    const a = argsLayer(['--no-nchan.enabled', '--web.chat', '--no-web.admin', '-h', '-c', 'f.json', '--stomp.enabled=off'], problems);
    assert.deepEqual(problems, []);
    assert.deepEqual(a.layer, { nchan: { enabled: false }, web: { chat: true, admin: false }, stomp: { enabled: false } });
    assert.equal(a.help, true);
    assert.equal(a.configFile, 'f.json');
    argsLayer(['--no-port'], problems);
    assert.match(problems.join('\n'), /--no-port: unknown option/);
  });

  test('a bad flag value is reported once and left out of the layer, so the schema does not report it again', () => {
    const problems: string[] = [];
    const a = argsLayer(['--port', 'abc', '--dev', 'maybe'], problems);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.deepEqual(a.layer, { dev: true });
    assert.deepEqual(problems.filter((p) => p.startsWith('--port')).length, 1);
  });

  test('unknown flags, config keys and HERALD_* variables get the closest known name', () => {
    const problems: string[] = [];
    argsLayer(['--prot', '80', '--limits.max-conections', '3'], problems);
    assert.match(problems[0]!, /--prot: unknown option \(did you mean --port\?\)/);
    assert.match(problems[1]!, /did you mean --limits\.max-connections\?/);
    assert.equal(problems.length, 2, 'the value after an unknown flag is not a stray argument');
    const warnings: string[] = [];
    envLayer({ HERALD_PROT: '80' }, problems, warnings);
    assert.match(warnings.join(''), /HERALD_PROT .*did you mean HERALD_PORT\?/);
  });

  test('booleans without a default (web.chat) parse from env and flags', () => {
    const problems: string[] = [];
    assert.deepEqual(envLayer({ HERALD_WEB_CHAT: 'false' }, problems), { web: { chat: false } });
    assert.deepEqual(argsLayer(['--web.chat', 'true'], problems).layer, { web: { chat: true } });
    assert.deepEqual(problems, []);
    assert.equal(resolveConfig(envLayer({ HERALD_WEB_CHAT: 'true' }, problems)).web.chat, true);
  });

  test('the PostgreSQL IM store is chosen by database.url, from HERALD_DATABASE_URL or the --database alias', () => {
    const problems: string[] = [];
    const env = envLayer({ HERALD_DATABASE_URL: 'postgres://127.0.0.1:5432/test', HERALD_DATABASE_POOL_SIZE: '4' }, problems);
    const args = argsLayer(['--database', 'postgresql://db/herald', '--database.schema', 'chat_1'], problems);
    assert.deepEqual(problems, []);
    assert.deepEqual(resolveConfig(env).database, { url: 'postgres://127.0.0.1:5432/test', schema: 'herald', poolSize: 4 });
    assert.deepEqual(resolveConfig(env, args.layer).database, { url: 'postgresql://db/herald', schema: 'chat_1', poolSize: 4 });
    assert.equal(resolveConfig({}).database.url, undefined);
    assert.throws(
      () => resolveConfig({ database: { url: 'mysql://x', schema: 'a;drop', poolSize: 0 } }),
      (err: ConfigError) => {
        assert.deepEqual(err.problems.map((p) => p.split(':')[0]).sort(), ['database.poolSize', 'database.schema', 'database.url']);
        return true;
      },
    );
  });

  test('a missing or non-object config file is a problem', () => {
    const problems: string[] = [];
    assert.deepEqual(fileLayer('/nonexistent/herald.json', problems), {});
    assert.equal(problems.length, 1);
  });

  test('an optional boolean (trustLoopback) takes true/false from env and flags', () => {
    const problems: string[] = [];
    assert.equal(resolveConfig(envLayer({ HERALD_TRUST_LOOPBACK: 'false' }, problems)).trustLoopback, false);
    assert.equal(resolveConfig(argsLayer(['--trust-loopback'], problems).layer).trustLoopback, true);
    assert.deepEqual(problems, []);
  });
});

describe('exposure rules', () => {
  const SECRET = 's'.repeat(32);

  test('development mode is refused next to token keys and on a non-loopback host unless devAllowUnsafe', () => {
    assert.match(
      problemsOf(() => resolveConfig({ dev: true, auth: { hmacSecret: SECRET } })).join(),
      /development mode accepts bare user names next to your token keys/,
    );
    assert.match(problemsOf(() => resolveConfig({ dev: true, auth: { publicKeys: ['-----BEGIN PUBLIC KEY-----'] } })).join(), /devAllowUnsafe/);
    assert.match(problemsOf(() => resolveConfig({ dev: true, host: '0.0.0.0', apiKey: SECRET })).join(), /non-loopback host \(0\.0\.0\.0\)/);
    assert.equal(resolveConfig({ dev: true, devAllowUnsafe: true, host: '0.0.0.0', apiKey: SECRET, auth: { hmacSecret: SECRET } }).dev, true);
    assert.equal(resolveConfig({ auth: { hmacSecret: SECRET } }).dev, false);
  });

  test('TLS needs both files; proxies, hosts and origins are validated', () => {
    assert.match(problemsOf(() => resolveConfig({ tls: { certFile: '/x.pem' } })).join(), /give both tls.certFile and tls.keyFile/);
    const problems = problemsOf(() =>
      resolveConfig({ trustedProxies: ['10.0.0.0/33', 'proxy.example'], allowedHosts: ['a b'], allowedOrigins: ['https://a.example/path'] }),
    );
    assert.equal(problems.length, 4, problems.join('\n'));
    const ok = resolveConfig({
      trustedProxies: ['10.0.0.0/8', '::1', '2001:db8::/32'],
      allowedHosts: ['*.example.com', 'herald.example'],
      allowedOrigins: ['https://app.example:8443', '*'],
    });
    assert.equal(ok.trustedProxies.length, 3);
  });
});
