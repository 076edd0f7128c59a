import { defineConfig } from 'vite';
import { wgslReflect } from './scripts/vite-wgsl-reflect.ts';

// Library build: `npm run build` writes dist/anchorax.js (the browser entry, src/index.ts) and
// dist/node.js (the Node entry, src/node.ts, which registers Dawn and imports the former).
// WGSL and its build-time reflection come from the wgslReflect plugin. `webgpu` and `node:*` stay external and are imported by
// dist/node.js only. Not minified: apps minify, and names (`picard.name`, error classes) survive.
export default defineConfig({
  plugins: [wgslReflect()],
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    minify: false,
    lib: {
      entry: { anchorax: 'src/index.ts', node: 'src/node.ts' },
      formats: ['es'],
      fileName: (_format, entryName) => `${entryName}.js`,
    },
    rollupOptions: { external: ['webgpu', /^node:/], output: { chunkFileNames: 'core-[hash].js' } },
  },
});
