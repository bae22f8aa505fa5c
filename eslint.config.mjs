// Lint: type-aware TypeScript rules, async hygiene, and the package layers of docs/architecture.md.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import prettier from 'eslint-config-prettier';
import layers from './layers.json' with { type: 'json' };

/** Which @shoal packages each package may import: layers.json, the one source of the layer table. */
const { allowed } = layers;
const all = Object.keys(allowed);

const layerRules = Object.entries(allowed).map(([pkg, deps]) => ({
  files: [`packages/${pkg}/src/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: all.filter((p) => p !== pkg && !deps.includes(p)).map((p) => `@shoal/${p}`),
            message: `@shoal/${pkg} may import only: ${deps.join(', ') || 'nothing from @shoal'} (docs/architecture.md)`,
          },
          { group: ['@shoal/*/src/*', '@shoal/*/dist/*'], message: 'import a package by its public name' },
          { group: ['../../*/src/*', '../../../packages/*'], message: 'no relative imports across packages' },
        ],
      },
    ],
  },
}));

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/*.mjs', '**/*.js', '.lab/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', name: ['test', 'it', 'describe', 'suite', 'before', 'after'], package: 'node:test' },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': 'error',
      'import-x/no-relative-packages': 'error',
    },
  },
  ...layerRules,
  prettier,
);
