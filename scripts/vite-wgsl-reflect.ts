/**
 * Vite plugin serving `virtual:anchorax-shaders`: the library's WGSL sources, each composed from
 * the file src/gpu/shader-files.ts names and the pieces its `//! include` lines declare
 * (scripts/wgsl-includes.ts), with its reflection computed here at build time by
 * src/gpu/reflect.ts (the same code that reflects defineLayer's WGSL at run time): bindings,
 * uniform layout and workgroup size of every @compute entry point, struct layouts of the other
 * sources, and the module-scope scalar constants of all (finish modes, op codes…). The bundle
 * thus carries data, not wgsl_reflect. A missing file, an include cycle or a kernel that cannot be
 * reflected fails the build.
 *
 * Every vite/vitest config of the project lists it (vite.config.ts: the library build and the
 * vite-node scripts; vitest.config.ts; demo/ and bench/ configs; test/helpers/browser.ts).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';
import { reflectConstants, reflectEntries, reflectStructs } from '../src/gpu/reflect.ts';
import { KERNEL_FILES, SOURCE_FILES, SUBGROUP_PIECES } from '../src/gpu/shader-files.ts';
import { ENABLE_SUBGROUPS, resolveIncludes, subgroupVariant, type ShaderReader } from './wgsl-includes.ts';

/** The id src/gpu/shaders.ts imports. */
export const SHADERS_MODULE_ID = 'virtual:anchorax-shaders';
const RESOLVED_ID = `\0${SHADERS_MODULE_ID}`;
const SHADER_DIR = fileURLToPath(new URL('../shaders/', import.meta.url));

/** Reflects `source` (the WGSL named `name`) with `reflect`, naming the source in any error. */
function reflected<T>(what: string, name: string, source: string, reflect: (source: string) => T): T {
  try {
    return reflect(source);
  } catch (err) {
    throw new Error(`anchorax shaders: ${what} ${name}: cannot reflect: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * The module's code. Each distinct file is one string constant, and each source is composed from
 * them when the module loads (joined with newlines, in include order), so shared pieces (gate,
 * control…) are carried once; the reflections are JSON.
 */
function moduleCode(read: ShaderReader): string {
  const pieces: string[] = [];
  const index = new Map<string, number>();
  const compose = (texts: readonly string[]): { source: string; call: string } => {
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
  const textsOf = (order: readonly string[]): string[] => order.map((path) => read(path) ?? '');
  const composed = (file: string): { source: string; call: string } => compose(textsOf(resolveIncludes(file, read)));
  const clash = Object.keys(KERNEL_FILES).find((name) => Object.hasOwn(SOURCE_FILES, name));
  if (clash) throw new Error(`anchorax shaders: ${clash} names both a kernel and a source (src/gpu/shader-files.ts)`);
  const reflections: { kernels: Record<string, unknown>; structs: Record<string, unknown>; constants: Record<string, unknown> } = {
    kernels: {},
    structs: {},
    constants: {},
  };
  const kernels: string[] = [];
  for (const [name, file] of Object.entries(KERNEL_FILES)) {
    const order = resolveIncludes(file, read);
    const { source, call } = compose(textsOf(order));
    const entries = reflected('kernel', name, source, reflectEntries);
    if (Object.keys(entries).length === 0) throw new Error(`anchorax shaders: kernel ${name} (${file}) has no @compute entry point`);
    reflections.kernels[name] = entries;
    reflections.constants[name] = reflected('kernel', name, source, reflectConstants);
    const key = JSON.stringify(name);
    // The subgroup variant binds as the kernel does (checked here): it shares its reflection.
    const variant = subgroupVariant(order, SUBGROUP_PIECES, read);
    let subgroups = '';
    if (variant) {
      const alternative = compose([ENABLE_SUBGROUPS, ...textsOf(variant)]);
      const same = JSON.stringify(reflected('kernel', `${name} (subgroups)`, alternative.source, reflectEntries)) === JSON.stringify(entries);
      if (!same) throw new Error(`anchorax shaders: the subgroup variant of kernel ${name} binds otherwise than the kernel`);
      subgroups = `, subgroups: ${alternative.call}`;
    }
    kernels.push(`  ${key}: { source: ${call}, entries: R.kernels[${key}], constants: R.constants[${key}]${subgroups} },`);
  }
  const sources: string[] = [];
  for (const [name, file] of Object.entries(SOURCE_FILES)) {
    const { source, call } = composed(file);
    reflections.structs[name] = reflected('source', name, source, reflectStructs);
    reflections.constants[name] = reflected('source', name, source, reflectConstants);
    const key = JSON.stringify(name);
    sources.push(`  ${key}: { source: ${call}, structs: R.structs[${key}], constants: R.constants[${key}] },`);
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
      const texts = new Map<string, string | undefined>();
      return moduleCode((path) => {
        if (!texts.has(path)) {
          const file = `${SHADER_DIR}${path}`;
          // Edits of a piece reload the module (dev server, vitest --watch).
          this.addWatchFile(file);
          let text: string | undefined;
          try {
            text = readFileSync(file, 'utf8');
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          }
          texts.set(path, text);
        }
        return texts.get(path);
      });
    },
  };
}
