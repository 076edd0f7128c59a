/**
 * Vite plugin serving `virtual:anchorax-shaders`: the library's WGSL sources composed from
 * shaders/ as src/gpu/shader-recipes.ts says, each with its reflection (bindings, uniform layout
 * and workgroup size of every @compute entry point; struct layouts of the other sources), computed
 * here at build time by src/gpu/reflect.ts, the same code that reflects defineLayer's WGSL at run
 * time. The bundle thus carries data, not wgsl_reflect.
 *
 * Every vite/vitest config of the project lists it (vite.config.ts: the library build and the
 * vite-node scripts; vitest.config.ts; demo/ and bench/ configs; test/helpers/browser.ts).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';
import { reflectEntries, reflectStructs } from '../src/gpu/reflect.ts';
import { KERNEL_RECIPES, SOURCE_RECIPES } from '../src/gpu/shader-recipes.ts';

/** The id src/gpu/shaders.ts imports. */
export const SHADERS_MODULE_ID = 'virtual:anchorax-shaders';
const RESOLVED_ID = `\0${SHADERS_MODULE_ID}`;
const SHADER_DIR = fileURLToPath(new URL('../shaders/', import.meta.url));

/** The text of one recipe piece: `.wgsl` entries are files under shaders/, others WGSL text. */
function pieceText(piece: string, read: (path: string) => string): string {
  return piece.endsWith('.wgsl') ? read(`${SHADER_DIR}${piece}`) : piece;
}

/**
 * The module's code. Each distinct piece is one string constant, and each source is composed from
 * them when the module loads (as a join, like the recipes say), so shared pieces (gate, control…)
 * are carried once; the reflections are JSON.
 */
function moduleCode(read: (path: string) => string): string {
  const pieces: string[] = [];
  const index = new Map<string, number>();
  const composed = (recipe: readonly string[]): { source: string; call: string } => {
    const texts = recipe.map((piece) => pieceText(piece, read));
    const ids = texts.map((text) => {
      let id = index.get(text);
      if (id === undefined) {
        id = pieces.push(text) - 1;
        index.set(text, id);
      }
      return id;
    });
    return { source: texts.join('\n'), call: `c(${ids.join(', ')})` };
  };
  const kernels: string[] = [];
  const reflections: { kernels: Record<string, unknown>; structs: Record<string, unknown> } = { kernels: {}, structs: {} };
  for (const [name, recipe] of Object.entries(KERNEL_RECIPES)) {
    const { source, call } = composed(recipe);
    let entries: ReturnType<typeof reflectEntries>;
    try {
      entries = reflectEntries(source);
    } catch (err) {
      throw new Error(`anchorax shaders: kernel ${name} cannot be reflected: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (Object.keys(entries).length === 0) throw new Error(`anchorax shaders: kernel ${name} has no @compute entry point`);
    reflections.kernels[name] = entries;
    kernels.push(`  ${JSON.stringify(name)}: { source: ${call}, entries: R.kernels[${JSON.stringify(name)}] },`);
  }
  const sources: string[] = [];
  for (const [name, recipe] of Object.entries(SOURCE_RECIPES)) {
    const { source, call } = composed(recipe);
    reflections.structs[name] = reflectStructs(source);
    sources.push(`  ${JSON.stringify(name)}: { source: ${call}, structs: R.structs[${JSON.stringify(name)}] },`);
  }
  // The reflections as one JSON string: compact whatever the bundler's minification.
  return [
    `const P = ${JSON.stringify(pieces)};`,
    `const c = (...ids) => ids.map((i) => P[i]).join('\\n');`,
    `const R = JSON.parse(${JSON.stringify(JSON.stringify(reflections))});`,
    `export const KERNELS = {\n${kernels.join('\n')}\n};`,
    `export const SOURCES = {\n${sources.join('\n')}\n};`,
    '',
  ].join('\n');
}

/** The plugin. */
export function wgslReflect(): Plugin {
  return {
    name: 'anchorax-wgsl-reflect',
    resolveId(id) {
      return id === SHADERS_MODULE_ID ? RESOLVED_ID : null;
    },
    load(id) {
      if (id !== RESOLVED_ID) return null;
      return moduleCode((path) => {
        // Edits of a piece reload the module (dev server, vitest --watch).
        this.addWatchFile(path);
        return readFileSync(path, 'utf8');
      });
    },
  };
}
