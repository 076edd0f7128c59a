import { defineConfig } from 'vite';
import { wgslReflect } from '../scripts/vite-wgsl-reflect.ts';

// Bundles the Node benchmarks into plain-JS files (bench/dist/run.mjs, backprop.mjs, norm-chain.mjs,
// prefix-head.mjs, stage-tail.mjs) for
// machines that have node and the `webgpu` package but no TypeScript toolchain (bench/gpu-run.sh).
// TF.js (the contender) is bundled in, so those machines need no TF.js install either.
export default defineConfig({
  plugins: [wgslReflect()],
  build: {
    ssr: true,
    outDir: 'bench/dist',
    emptyOutDir: true,
    target: 'node20',
    rollupOptions: {
      input: { run: 'bench/run.ts', backprop: 'bench/backprop.ts', 'norm-chain': 'bench/norm-chain.ts', 'prefix-head': 'bench/prefix-head.ts', 'stage-tail': 'bench/stage-tail.ts' },
      external: ['webgpu', /^node:/],
      // .mjs chunks (TF.js, loaded on demand) run as ES modules wherever the folder is copied.
      output: { entryFileNames: '[name].mjs', chunkFileNames: 'chunks/[name]-[hash].mjs' },
    },
  },
  ssr: { noExternal: true, external: ['webgpu'] },
});
