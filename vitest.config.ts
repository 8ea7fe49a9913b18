import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The README test runs the README's test command, this whole suite, in a fresh clone: that
    // inner run leaves the README test out, or it would recurse.
    exclude: [...configDefaults.exclude, ...(process.env.README_TEST_INNER ? ['test/integration/readme.test.ts'] : [])],
    // Lab tests share the kernel (conntrack table, CPU): one file at a time keeps them honest.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
