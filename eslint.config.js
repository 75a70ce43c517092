import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'data/**', 'coverage/**', 'scratch/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-syntax': [
        'error',
        {
          selector: "MemberExpression[object.name='process'][property.name='env']",
          message: 'Only src/cli reads process.env; pass configuration down as options.',
        },
      ],
    },
  },
  {
    files: ['src/cli/**', 'test/**', 'bench/**', 'bin/**', 'vitest.config.ts', 'agent/cli.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
);
