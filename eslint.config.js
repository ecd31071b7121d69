import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    // Product code ships in the images: it imports nothing from the harness, nor its dev-only packages.
    files: ['agent/**', 'webhook/**', 'cli/**', 'shared/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/localcluster/**', '**/demo/**', '**/tools/**', '**/bench/**', '**/test/**'], message: 'product code must not import the harness' },
            { group: ['vega', 'vega-lite', 'spdy-transport'], message: 'a devDependency: absent from the images' },
          ],
        },
      ],
    },
  },
);
