import { defineConfig } from 'vitest/config';
import { wgslReflect } from './scripts/vite-wgsl-reflect.ts';

export default defineConfig({
  plugins: [wgslReflect()],
  // The library's WGSL and its build-time reflection come from the wgslReflect plugin.
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
