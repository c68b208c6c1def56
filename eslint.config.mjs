import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

// Plain JS files here are Node scripts and configs. Take their globals from the running Node
// itself (plus the CommonJS module scope) instead of depending on the `globals` package.
const nodeGlobals = Object.fromEntries(
  [...Object.getOwnPropertyNames(globalThis), 'require', 'module', 'exports', '__dirname', '__filename'].map(
    (name) => [name, 'readonly'],
  ),
);

export default defineConfig(
  { ignores: ['**/node_modules/**', '**/dist/**', 'bench/results/**', 'coverage/**', '.demo/**', 'tmp/**'] },
  js.configs.recommended,
  // Not the type-checked preset: linting stays fast and needs no build.
  tseslint.configs.recommended,
  {
    files: ['**/*.{js,cjs,mjs}'],
    languageOptions: { globals: nodeGlobals },
  },
  {
    // No package sets "type": "module", so .js files are CommonJS (e.g. ecosystem.config.js).
    files: ['**/*.{js,cjs}'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    rules: {
      // `_name` marks an intentionally unused parameter or binding.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' },
      ],
    },
  },
);
