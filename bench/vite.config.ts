import { defineConfig } from 'vite';

// Bundles the Node benchmark into one plain-JS file (bench/dist/run.mjs) for machines that have
// node and the `webgpu` package but no TypeScript toolchain (see bench/README.md).
export default defineConfig({
  build: {
    ssr: 'bench/run.ts',
    outDir: 'bench/dist',
    emptyOutDir: true,
    target: 'node20',
    rollupOptions: { external: ['webgpu', /^node:/], output: { entryFileNames: 'run.mjs' } },
  },
  ssr: { noExternal: true, external: ['webgpu'] },
});
