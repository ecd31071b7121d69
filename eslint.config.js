import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// Architecture rules a machine checks (test/unit/lint-rules.test.ts proves they bite):
// - the product (agent/, webhook/, cli/, common/) imports nothing from the harness, nor a
//   harness-only package;
// - the decision core (agent/decide/) is pure: it imports only itself, the Tarantool vocabulary
//   (agent/tarantool/) and common/errors.ts — no Node built-ins, no I/O, no clock;
// - the Tarantool vocabulary (agent/tarantool/) is pure too (type imports aside);
// - @kubernetes/client-node is imported for its types only, by the product and the harness alike:
//   every API call goes through common/kube/ (tests may use it as an independent client).
// ESLint does not merge one rule's options across config objects, so the core's rule repeats the
// product's patterns.
const HARNESS = {
  regex: '(^|/)(localcluster|demo|tools|bench|test)/',
  message: 'the product never imports the harness (localcluster/, demo/, tools/, bench/, test/): move what both need into common/',
};
const HARNESS_PACKAGES = {
  regex: '^(vega|vega-lite|spdy-transport|tarantool-driver|fast-check|vitest)(/|$)',
  message: 'a harness-only package (a devDependency): the images do not carry it',
};
const CLIENT_NODE = {
  regex: '^@kubernetes/client-node(/|$)',
  allowTypeImports: true,
  message: 'client-node for its types only (`import type`): call the API server through common/kube/ (add a kind to resources.ts if it lacks one)',
};
const EFFECTS = {
  regex: '^(node:|fs|net|http|https|child_process|pino|prom-client|ws|express|@kubernetes/)|(^|/)(console|instance|kube|mesh|lease|state|http|member|coordinator|wire)/',
  message: 'pure code: no Node built-ins, no I/O, no adapters (pass observations in, return actions with a reason)',
};
const CORE_ONLY = {
  regex: '^(?!\\./[\\w-]+\\.js$|\\.\\./tarantool/[\\w-]+\\.js$|\\.\\./\\.\\./common/errors\\.js$)',
  message: 'the decision core imports only agent/decide/, agent/tarantool/ and common/errors.ts',
};

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/results/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', Buffer: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', fetch: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['agent/**/*.ts', 'webhook/**/*.ts', 'cli/**/*.ts', 'common/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [HARNESS, HARNESS_PACKAGES, CLIENT_NODE] }] },
  },
  {
    files: ['localcluster/**/*.ts', 'demo/**/*.ts', 'tools/**/*.ts', 'bench/**/*.ts', 'test/support/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [CLIENT_NODE] }] },
  },
  {
    files: ['agent/tarantool/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [HARNESS, HARNESS_PACKAGES, CLIENT_NODE, { ...EFFECTS, allowTypeImports: true }] }] },
  },
  {
    files: ['agent/decide/**/*.ts'],
    rules: { '@typescript-eslint/no-restricted-imports': ['error', { patterns: [HARNESS, HARNESS_PACKAGES, EFFECTS, CORE_ONLY] }] },
  },
);
