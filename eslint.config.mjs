import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'out/', '**/*.generated.ts', '.vscode-test/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', ignoreRestSiblings: true }],
      '@typescript-eslint/consistent-type-imports': 'off',
      eqeqeq: ['error', 'always'],
      'no-restricted-imports': ['error', { paths: [{ name: 'vscode', message: 'only src/extension may import vscode' }] }],
    },
  },
  {
    files: ['src/extension/**/*.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // what the host and the webviews share runs in both: no Node, no vscode, nothing of the worker's
    files: ['src/shared/**/*.ts', 'webview/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'vscode', message: 'src/shared and webview/ run in the webview too' }],
          patterns: [
            {
              group: ['node:*', 'onnxruntime-node', 'sharp', 'vscode-jsonrpc', 'vscode-jsonrpc/*'],
              message: 'src/shared and webview/ run in the webview too',
            },
            {
              group: ['**/pipeline/**', '**/worker/**', '**/extension/**', '**/builder/**', '**/cli/**'],
              message: 'src/shared imports only src/shared (and src/common/errors)',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.mjs', 'bin/*.js'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', require: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { module: 'writable', require: 'readonly' } },
  },
  {
    files: ['bin/*.js', 'test/e2e/lm-client/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // the e2e's stand-in for another extension: plain CommonJS, loaded by VS Code as it is
    files: ['test/e2e/lm-client/*.js'],
    languageOptions: { globals: { require: 'readonly', exports: 'writable', setTimeout: 'readonly' } },
  },
);
