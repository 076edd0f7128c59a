// The `//! include` resolver (scripts/wgsl-includes.ts) on small in-memory trees: depth-first
// order, each piece once, and the build errors (missing file, cycle, malformed directive). Then
// the constants TypeScript shares with WGSL: FinishMode and the elementwise op codes against
// wgsl_reflect's parse of the .wgsl files themselves, done here, and the typed accessor's errors.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Const, LiteralExpr, WgslParser } from 'wgsl_reflect/wgsl_reflect.module.js';
import { describe, expect, it } from 'vitest';
import { includesOf, resolveIncludes, subgroupVariant } from '../scripts/wgsl-includes';
import { reflectConstants } from '../src/gpu/reflect';
import { wgslConstant } from '../src/gpu/shaders';
import { OPS } from '../src/layers/stages/elementwise';
import { EPILOGUE_MAX_OPS, EPILOGUE_OP_CODES } from '../src/layers/dense';
import { FinishMode } from '../src/solvers/run';
import { thrown } from './helpers/errors';

const tree = (files: Record<string, string>) => (path: string): string | undefined => (Object.hasOwn(files, path) ? files[path] : undefined);
const message = (fn: () => unknown): string => {
  const err = thrown(fn);
  if (!(err instanceof Error)) throw new Error('expected an error');
  return err.message;
};

describe('//! include', () => {
  it('resolves depth first in directive order, each piece once, before its first includer', () => {
    const read = tree({
      'main.wgsl': '// a kernel\n//! include lib/b.wgsl\n//! include lib/c.wgsl\nfn main() {}\n',
      'lib/b.wgsl': '//! include lib/d.wgsl\nfn b() {}\n',
      'lib/c.wgsl': '  //! include lib/d.wgsl\n//! include lib/b.wgsl   \nfn c() {}\n',
      'lib/d.wgsl': 'fn d() {}\n',
    });
    expect(resolveIncludes('main.wgsl', read)).toEqual(['lib/d.wgsl', 'lib/b.wgsl', 'lib/c.wgsl', 'main.wgsl']);
    expect(resolveIncludes('lib/c.wgsl', read)).toEqual(['lib/d.wgsl', 'lib/b.wgsl', 'lib/c.wgsl']);
    expect(resolveIncludes('lib/d.wgsl', read)).toEqual(['lib/d.wgsl']);
  });

  it('plain comments are not directives', () => {
    expect(includesOf('// includes lib/gate.wgsl\n// ! include lib/x.wgsl\nlet a = 1; // //! include lib/y.wgsl\n', 'a.wgsl')).toEqual([]);
  });

  it('a missing file names the chain that included it', () => {
    const read = tree({ 'k.wgsl': '//! include lib/a.wgsl\n', 'lib/a.wgsl': '//! include lib/gone.wgsl\n' });
    expect(message(() => resolveIncludes('k.wgsl', read))).toBe('anchorax shaders: no file shaders/lib/gone.wgsl, included by k.wgsl → lib/a.wgsl');
    expect(message(() => resolveIncludes('none.wgsl', read))).toBe('anchorax shaders: no file shaders/none.wgsl');
  });

  it('a cycle is an error naming it', () => {
    const read = tree({
      'k.wgsl': '//! include lib/a.wgsl\n',
      'lib/a.wgsl': '//! include lib/b.wgsl\n',
      'lib/b.wgsl': '//! include lib/a.wgsl\n',
      'self.wgsl': '//! include self.wgsl\n',
    });
    expect(message(() => resolveIncludes('k.wgsl', read))).toBe('anchorax shaders: include cycle k.wgsl → lib/a.wgsl → lib/b.wgsl → lib/a.wgsl');
    expect(message(() => resolveIncludes('self.wgsl', read))).toBe('anchorax shaders: include cycle self.wgsl → self.wgsl');
  });

  it.each([
    '//! include lib/a.wgsl lib/b.wgsl',
    '//!include lib/a.wgsl',
    '//! inclde lib/a.wgsl',
    '//! include ../a.wgsl',
    '//! include /lib/a.wgsl',
    '//! include lib/a.txt',
    '//! include',
    '//!',
  ])('a malformed directive is an error at its line: %s', (line) => {
    expect(message(() => includesOf(`// header\n${line}\n`, 'lib/k.wgsl'))).toMatch(/^anchorax shaders: lib\/k\.wgsl:2: malformed directive .*expected "\/\/! include lib\/name\.wgsl"/);
  });

  it('a subgroup variant replaces each piece that has one, in place; none when no piece has one', () => {
    const read = tree({
      'k.wgsl': '//! include lib/r.wgsl\n//! include lib/g.wgsl\nfn main() {}\n',
      'plain.wgsl': '//! include lib/g.wgsl\n',
      'lib/g.wgsl': 'fn g() {}\n',
      'lib/r.wgsl': '//! include lib/g.wgsl\nfn r() {}\n',
      'lib/r_sg.wgsl': '//! include lib/g.wgsl\nfn r() {}\n',
      'lib/r_bad.wgsl': 'fn r() {}\n',
    });
    const order = resolveIncludes('k.wgsl', read);
    expect(order).toEqual(['lib/g.wgsl', 'lib/r.wgsl', 'k.wgsl']);
    expect(subgroupVariant(order, { 'lib/r.wgsl': 'lib/r_sg.wgsl' }, read)).toEqual(['lib/g.wgsl', 'lib/r_sg.wgsl', 'k.wgsl']);
    expect(subgroupVariant(resolveIncludes('plain.wgsl', read), { 'lib/r.wgsl': 'lib/r_sg.wgsl' }, read)).toBeUndefined();
    expect(message(() => subgroupVariant(order, { 'lib/r.wgsl': 'lib/r_bad.wgsl' }, read))).toBe(
      'anchorax shaders: lib/r_bad.wgsl includes [], but lib/r.wgsl, which it stands for, includes [lib/g.wgsl]',
    );
    expect(message(() => subgroupVariant(order, { 'lib/r.wgsl': 'lib/none.wgsl' }, read))).toBe('anchorax shaders: no file shaders/lib/none.wgsl, the subgroup variant of lib/r.wgsl');
  });
});

/** The module-scope scalar constants of a .wgsl file under shaders/, parsed here with wgsl_reflect. */
function fileConstants(path: string): Map<string, number> {
  const text = readFileSync(fileURLToPath(new URL(`../shaders/${path}`, import.meta.url)), 'utf8');
  const constants = new Map<string, number>();
  for (const node of new WgslParser().parse(text)) {
    if (node instanceof Const && node.value instanceof LiteralExpr) constants.set(node.name, node.value.scalarValue);
  }
  return constants;
}

describe('constants shared by TypeScript and WGSL come from the WGSL', () => {
  it('FinishMode is the MODE_* constants of lib/finish_step.wgsl', () => {
    const wgsl = fileConstants('lib/finish_step.wgsl');
    const names: Record<keyof typeof FinishMode, string> = {
      picardFirst: 'MODE_PICARD_FIRST',
      picard: 'MODE_PICARD',
      andersonFirst: 'MODE_ANDERSON_FIRST',
      anderson: 'MODE_ANDERSON',
      broydenFirst: 'MODE_BROYDEN_FIRST',
      broyden: 'MODE_BROYDEN',
      advance: 'MODE_ADVANCE',
    };
    for (const [key, name] of Object.entries(names) as [keyof typeof FinishMode, string][]) {
      expect(wgsl.get(name), name).toBeTypeOf('number');
      expect(FinishMode[key], key).toBe(wgsl.get(name));
    }
    expect([...wgsl.keys()].filter((k) => k.startsWith('MODE_')).sort()).toEqual(Object.values(names).sort());
    expect(new Set(Object.values(FinishMode)).size).toBe(7);
  });

  it('OPS is the OP_* constants of lib/activations.wgsl, one per activation', () => {
    const wgsl = fileConstants('lib/activations.wgsl');
    expect(OPS).toEqual({ tanh: wgsl.get('OP_TANH'), relu: wgsl.get('OP_RELU'), gelu: wgsl.get('OP_GELU') });
    expect([...wgsl.keys()].filter((k) => k.startsWith('OP_')).sort()).toEqual(['OP_GELU', 'OP_RELU', 'OP_TANH']);
    expect(new Set(Object.values(OPS)).size).toBe(3);
  });

  it('the fused epilogue op codes are the OP_* constants of lib/activations.wgsl and lib/epilogue.wgsl', () => {
    const wgsl = new Map([...fileConstants('lib/activations.wgsl'), ...fileConstants('lib/epilogue.wgsl')]);
    expect(EPILOGUE_OP_CODES).toEqual({
      tanh: wgsl.get('OP_TANH'), relu: wgsl.get('OP_RELU'), gelu: wgsl.get('OP_GELU'),
      'add-qd': wgsl.get('OP_ADD_QD'), dropout: wgsl.get('OP_DROPOUT'),
    });
    expect(EPILOGUE_MAX_OPS).toBe(wgsl.get('EPI_MAX'));
    // Every op and OP_NONE distinct.
    expect(new Set([...Object.values(EPILOGUE_OP_CODES), wgsl.get('OP_NONE')]).size).toBe(6);
  });

  it('the accessor reads a constant of an included piece, and refuses a missing one or a wrong type', () => {
    expect(wgslConstant('picardFused', 'MODE_BROYDEN', 'u32')).toBe(fileConstants('lib/finish_step.wgsl').get('MODE_BROYDEN'));
    expect(wgslConstant('picardFused', 'REDUCE_SIZE', 'u32')).toBe(256);
    expect(message(() => wgslConstant('finish', 'MODE_NONE', 'u32'))).toMatch(/the WGSL of finish declares no module-scope scalar const MODE_NONE/);
    expect(message(() => wgslConstant('stageElementwise', 'GELU_A', 'u32'))).toBe("anchorax: const GELU_A of stageElementwise's WGSL is f32, not u32");
    expect(wgslConstant('stageElementwise', 'GELU_A', 'f32')).toBe(Math.fround(0.044715));
  });

  it('reflectConstants: scalar literals and folded expressions at module scope only', () => {
    const constants = reflectConstants(`
const A: u32 = 6u;
const B = -3;
const C: f32 = 0.7978845608028654;
const D = A * 2u;
const E: u32 = LATER + 1u;
const LATER: u32 = 0xFFu;
const V = vec2<f32>(1.0, 2.0);
const T = true;
fn f() -> u32 { const L = 3u; return L; }
`);
    expect(constants).toEqual({
      A: { type: 'u32', value: 6 },
      B: { type: 'i32', value: -3 },
      C: { type: 'f32', value: Math.fround(0.7978845608028654) },
      D: { type: 'u32', value: 12 },
      LATER: { type: 'u32', value: 255 },
    });
  });
});
