/**
 * The `//! include` directive of the library's WGSL (build time only; scripts/vite-wgsl-reflect.ts
 * composes every kernel with it).
 *
 * A .wgsl file under shaders/ declares each piece it needs with a line of its own
 *
 *     //! include lib/gate.wgsl
 *
 * (the path relative to shaders/). The line is a WGSL comment, so every file stays valid WGSL and
 * the composed source carries the lines unchanged. `//!` at the start of a line (after any
 * indentation) is reserved for directives: any other text after it is an error, so a misspelt directive cannot be silently
 * ignored.
 */

const DIRECTIVE = /^\/\/!(.*)$/;
const INCLUDE = /^ include ([A-Za-z0-9_]+(?:\/[A-Za-z0-9_]+)*\.wgsl)\s*$/;

/** Reads a file under shaders/ by its relative path; undefined when there is none. */
export type ShaderReader = (path: string) => string | undefined;

/** The paths `text` (the content of `file`) includes, in the order its directive lines give them. */
export function includesOf(text: string, file: string): string[] {
  const paths: string[] = [];
  text.split('\n').forEach((line, index) => {
    const directive = DIRECTIVE.exec(line.trim());
    if (!directive) return;
    const include = INCLUDE.exec(directive[1] ?? '');
    if (!include?.[1]) {
      throw new Error(
        `anchorax shaders: ${file}:${index + 1}: malformed directive "${line.trim()}" (expected "//! include lib/name.wgsl", a path relative to shaders/)`,
      );
    }
    paths.push(include[1]);
  });
  return paths;
}

/**
 * The files `file` is composed of, in order: its includes, resolved recursively depth first in the
 * order of the directive lines, each file once (before the first file that includes it), and
 * `file` itself last. A missing file or an include cycle throws an error naming the chain of
 * includes that reached it.
 */
export function resolveIncludes(file: string, read: ShaderReader): string[] {
  const order: string[] = [];
  const done = new Set<string>();
  const visit = (path: string, chain: readonly string[]): void => {
    if (done.has(path)) return;
    const at = [...chain, path];
    if (chain.includes(path)) throw new Error(`anchorax shaders: include cycle ${at.join(' → ')}`);
    const text = read(path);
    if (text === undefined) {
      const by = chain.length > 0 ? `, included by ${chain.join(' → ')}` : '';
      throw new Error(`anchorax shaders: no file shaders/${path}${by}`);
    }
    for (const include of includesOf(text, path)) visit(include, at);
    done.add(path);
    order.push(path);
  };
  visit(file, []);
  return order;
}

/** The line that opens a subgroup variant (WGSL wants it before every declaration). */
export const ENABLE_SUBGROUPS = 'enable subgroups;';

/**
 * The subgroup variant of a composition `order` (from {@link resolveIncludes}): each piece that
 * `variants` maps replaced by its variant, which must include exactly what the piece includes (so
 * the order stays valid); undefined when no piece of `order` has a variant.
 */
export function subgroupVariant(order: readonly string[], variants: Readonly<Record<string, string>>, read: ShaderReader): string[] | undefined {
  if (!order.some((path) => Object.hasOwn(variants, path))) return undefined;
  return order.map((path) => {
    if (!Object.hasOwn(variants, path)) return path;
    const variant = variants[path] as string;
    const [piece, alternative] = [read(path) ?? '', read(variant)];
    if (alternative === undefined) throw new Error(`anchorax shaders: no file shaders/${variant}, the subgroup variant of ${path}`);
    const want = includesOf(piece, path).join(', ');
    const got = includesOf(alternative, variant).join(', ');
    if (want !== got) throw new Error(`anchorax shaders: ${variant} includes [${got}], but ${path}, which it stands for, includes [${want}]`);
    return variant;
  });
}
