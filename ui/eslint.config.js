import js from '@eslint/js';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import ts from 'typescript-eslint';

export default ts.config(
  { ignores: ['dist/', 'node_modules/', 'public/', 'src/gen/'] },
  js.configs.recommended,
  ...ts.configs.recommended,
  ...svelte.configs['flat/recommended'],
  {
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      // Host data (log lines, paths, hostnames) is rendered as text, never as HTML.
      'svelte/no-at-html-tags': 'error',
      // Only src/lib/host.ts talks to Tauri, so the UI runs against a fake host in tests.
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['@tauri-apps/*'], message: 'Import the host from src/lib/host.ts.' }] },
      ],
    },
  },
  {
    files: ['src/lib/host.ts'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // The wall clock is read in src/lib/clock.ts only, so tests can pin it.
    ignores: ['src/lib/clock.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']",
          message: 'Read the time through src/lib/clock.ts (nowMs, nowSeconds, nowMicros).',
        },
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'Read the time through src/lib/clock.ts (nowDate).',
        },
      ],
    },
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: ts.parser } },
  },
);
