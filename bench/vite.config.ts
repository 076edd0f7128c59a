import { defineConfig } from 'vite';

// Bundles the Node benchmarks into plain-JS files (bench/dist/run.mjs, bench/dist/backprop.mjs) for
// machines that have node and the `webgpu` package but no TypeScript toolchain (bench/gpu-run.sh).
export default defineConfig({
  build: {
    ssr: true,
    outDir: 'bench/dist',
    emptyOutDir: true,
    target: 'node20',
    rollupOptions: {
      input: { run: 'bench/run.ts', backprop: 'bench/backprop.ts' },
      external: ['webgpu', /^node:/],
      output: { entryFileNames: '[name].mjs' },
    },
  },
  ssr: { noExternal: true, external: ['webgpu'] },
});
