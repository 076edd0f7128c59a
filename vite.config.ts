import { defineConfig } from 'vite';
import { wgslReflect } from './scripts/vite-wgsl-reflect.ts';

// Library build: `npm run build` writes dist/anchorax.js (ESM). WGSL files are inlined through `?raw`.
// `webgpu` (Dawn for Node) stays an external import so that browser bundles never pull it in.
export default defineConfig({
  plugins: [wgslReflect()],
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: true,
    lib: { entry: 'src/index.ts', formats: ['es'], fileName: () => 'anchorax.js' },
    rollupOptions: { external: ['webgpu', /^node:/] },
  },
});
