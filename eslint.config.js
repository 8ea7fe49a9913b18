// ESLint (flat config) with typescript-eslint's type-aware rules. Part of `npm test` (`npm run lint`).
// The layers import one way: common <- contract <- collector | processor <- dashboards <- cli, with
// lab/ (the network-namespace lab and its harness) between the components and the cli, and test/
// and bench/ above everything. docs/ARCHITECTURE.md draws them.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const LAYERS = ['common', 'contract', 'collector', 'processor', 'dashboards', 'lab', 'cli', 'test', 'bench'];

/** What each layer may import from the others (itself always). */
const ALLOWED = {
  common: [],
  contract: ['common'],
  collector: ['common', 'contract'],
  processor: ['common', 'contract'],
  dashboards: ['common', 'contract', 'processor'],
  lab: ['common', 'contract', 'collector', 'processor'],
  cli: ['common', 'contract', 'collector', 'processor', 'dashboards', 'lab'],
};

/** Libraries kept behind one file each, so that swapping one is a one-file change. */
const CONFINED = [
  { name: 'kafkajs', owner: 'common/kafka.ts' },
  { name: '@clickhouse/client', owner: 'processor/clickhouse/store.ts' },
  { name: 'chdb', owner: 'processor/clickhouse/store.ts' },
  { name: '@kubernetes/client-node', owner: 'processor/k8s/client.ts' },
];

function layerRules(layer) {
  const banned = LAYERS.filter((l) => l !== layer && !ALLOWED[layer].includes(l));
  return {
    files: [`${layer}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          regex: `^(\\.\\./)+(${banned.join('|')})/`,
          message: `${layer}/ may import only ${['itself', ...ALLOWED[layer]].join(', ')} (docs/ARCHITECTURE.md, layers)`,
        }],
        paths: CONFINED.map((c) => ({ name: c.name, message: `only ${c.owner} imports ${c.name}` })),
      }],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'build/**', 'dashboards/grafana/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: false }],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // tsc inlines a const enum, vitest (esbuild, isolatedModules) does not: tests would run other code
      'no-restricted-syntax': ['error',
        { selector: 'TSEnumDeclaration[const=true]', message: 'no const enum: use an object `as const`' },
        { selector: "TSAsExpression > TSTypeReference.typeAnnotation[typeName.name='Error']", message: 'a thrown value may be anything: use errorMessage(e) or asError(e) (common/errors.ts)' },
      ],
    },
  },
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  ...Object.keys(ALLOWED).map(layerRules),
  // The owners of the confined libraries, and the lab's stand-ins for Kafka and a ClickHouse server.
  ...[...new Set(CONFINED.map((c) => c.owner)), 'lab/kafka-mock.ts', 'lab/clickhouse-front.ts'].map((owner) => {
    const layer = owner.split('/')[0];
    const banned = LAYERS.filter((l) => l !== layer && !ALLOWED[layer].includes(l));
    return { files: [owner], rules: { 'no-restricted-imports': ['error', { patterns: [{ regex: `^(\\.\\./)+(${banned.join('|')})/`, message: `${layer}/ may import only ${['itself', ...ALLOWED[layer]].join(', ')}` }] }] } };
  }),
);
