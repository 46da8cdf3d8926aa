// ESLint for the TypeScript and JavaScript sources (Prettier formats them; ruff checks trainer/).
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'out/', '.bench-cache/', '**/build/', 'trainer/', 'fixtures/*.sqlite'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  prettier,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // Prettier wraps code at 120; this also holds comments and long strings to it.
      'max-len': ['error', { code: 120, ignoreUrls: true, ignoreRegExpLiterals: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    // A function longer than a screen does more than one thing; tests are exempt (a test reads top to bottom).
    files: [
      'bin/**',
      'cli/**',
      'config/**',
      'engine/**',
      'sources/**',
      'transforms/**',
      'sinks/**',
      'pipelines/**',
      'scripts/**',
    ],
    rules: { 'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }] },
  },
);
