import js from '@eslint/js';
import svelte from 'eslint-plugin-svelte';
import globals from 'globals';
import ts from 'typescript-eslint';

// Only the generated client (src/gen/ipc.ts, not linted) talks to Tauri, so the UI runs
// against a fake host in tests.
const TAURI = { group: ['@tauri-apps/*'], message: 'Import the host from src/lib/host.ts.' };
// Controllers (src/domains/<domain>/*.svelte.ts) are the only code that calls the host: views and
// components use their domain's controller from context. Types (Host, HostError) are fine.
const HOST = {
  group: ['**/lib/host', './host'],
  allowTypeImports: true,
  message: 'Only controllers (src/domains/*/*.svelte.ts) call the host; use your domain controller from context.',
};
const GET_HOST = {
  group: ['**/lib/context'],
  importNames: ['getHost'],
  message: "Only controllers' provide functions take the host from context.",
};
const FAKES = { group: ['**/fakes', '**/fakes/*'], message: 'The fake host is for tests.' };

const restrictImports = (...patterns) => ({
  'no-restricted-imports': 'off',
  '@typescript-eslint/no-restricted-imports': ['error', { patterns }],
});

// The wall clock is read in src/lib/clock.ts only, so tests can pin it.
const CLOCK = [
  {
    selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']",
    message: 'Read the time through src/lib/clock.ts (nowMs, nowSeconds, nowMicros).',
  },
  {
    selector: "NewExpression[callee.name='Date'][arguments.length=0]",
    message: 'Read the time through src/lib/clock.ts (nowDate).',
  },
];
// Views and components compose; what reaches the host is their controller's.
const NO_HOST_CALLS = [
  {
    selector: "CallExpression[callee.name='getHost']",
    message: 'Views and components make no host calls: provide or use the domain controller.',
  },
  {
    selector: "CallExpression[callee.object.name='host']",
    message: 'Views and components make no host calls: call the domain controller.',
  },
];

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
      ...restrictImports(TAURI, HOST, GET_HOST, FAKES),
    },
  },
  {
    files: ['src/domains/**/*.svelte.ts', 'src/lib/context.ts'],
    rules: restrictImports(TAURI, FAKES),
  },
  {
    // The composition root: it makes the one host App hands down.
    files: ['src/main.ts'],
    rules: restrictImports(TAURI, GET_HOST, FAKES),
  },
  {
    files: ['src/**/*.test.ts', 'src/test-setup.ts', 'src/fakes/**'],
    rules: restrictImports(TAURI),
  },
  {
    files: ['src/lib/host.ts'],
    rules: restrictImports(TAURI),
  },
  {
    ignores: ['src/lib/clock.ts'],
    rules: { 'no-restricted-syntax': ['error', ...CLOCK] },
  },
  {
    files: ['**/*.svelte'],
    rules: { 'no-restricted-syntax': ['error', ...CLOCK, ...NO_HOST_CALLS] },
  },
  {
    files: ['**/*.svelte', '**/*.svelte.ts'],
    languageOptions: { parserOptions: { parser: ts.parser } },
  },
);
