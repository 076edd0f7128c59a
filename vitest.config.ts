import { defineConfig } from 'vitest/config';

export default defineConfig({
  // `.wgsl?raw` imports need nothing here: `?raw` is built into vite (and so vitest).
  test: {
    include: ['test/**/*.test.ts'],
    // Dawn's native handles can hang worker threads on exit; child processes can always be killed.
    pool: 'forks',
    // SwiftShader is CPU-heavy and the machine has 2 cores: two files at a time at most.
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 20_000,
    globalSetup: ['test/helpers/global-setup.ts'],
    // Tests import the browser-safe entry (src/index.ts); this registers Dawn and node:fs for it.
    setupFiles: ['src/node-platform.ts'],
  },
});
