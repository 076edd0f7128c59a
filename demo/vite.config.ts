import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { wgslReflect } from '../scripts/vite-wgsl-reflect.ts';

// The live training page: `npm run demo` serves it, `npm run build:demo` writes demo/dist.
const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  plugins: [wgslReflect()],
  // Relative asset paths so demo/dist can be served from any folder.
  base: './',
  publicDir: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'esnext',
    // The MNIST chunk is ~20 MB of JSON by design.
    chunkSizeWarningLimit: 30_000,
    rolldownOptions: {
      // src/ reaches Dawn only from Node; a page must never bundle it.
      external: ['webgpu', /^node:/],
    },
  },
  server: { host: '127.0.0.1' },
});
