// Lint: typescript-eslint with type information (no-floating-promises) and the layering rule
// of the house style: imports flow downward only (protocol ← core ← transports/fronts/engines ← api ← cli).
import tseslint from 'typescript-eslint';

const layer = (files, forbidden) => ({
  files,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: forbidden.map((dir) => ({ group: [`**/${dir}/*`, `**/${dir}.js`], message: `layering: ${files[0]} must not import ${dir}` })) },
    ],
  },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'clients/**/dist/**', 'bench/loadgen/**', '**/*.js'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's test()/describe() return promises the runner itself awaits.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'describe', 'it', 'suite'] }] },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  // Tests inspect decoded JSON frames; typing every frame shape there buys nothing.
  { files: ['test/**'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  layer(['src/protocol/**'], ['core', 'transports', 'fronts', 'engines', 'api', 'cli', 'server', 'select-engines', 'index']),
  layer(['src/core/**'], ['transports', 'fronts', 'engines', 'api', 'cli', 'server', 'select-engines', 'index']),
  layer(['src/transports/**'], ['fronts', 'engines', 'api', 'cli', 'server', 'select-engines', 'index']),
  layer(['src/engines/**'], ['transports', 'fronts', 'api', 'cli', 'server', 'select-engines', 'index']),
  layer(['src/fronts/**'], ['engines', 'api', 'cli', 'server', 'select-engines', 'index']),
  layer(['src/api/**'], ['cli', 'server', 'select-engines', 'index']),
  // The server receives finished engines; only the composition root (index.ts, select-engines.ts) names them.
  layer(['src/server.ts'], ['engines', 'cli', 'select-engines', 'index']),
);
