// The library's one-pass reader of user WGSL (src/layers/wgsl-scan.ts), on text a full parser
// might choke on: nested block comments, Unicode identifiers, trailing commas, expressions in
// attributes, aliases; and the structural problems it reports with their lines. CPU only.
import { describe, expect, it } from 'vitest';
import { declarations, moduleScopeNames, structureProblem, tokenize } from '../src/layers/wgsl-scan';

describe('wgsl-scan', () => {
  it('tokens skip (nested) comments and keep lines; identifiers may be Unicode', () => {
    const tokens = tokenize('a /* x /* y */ z */ b // c\n\u00e9t\u00e9 1.5e-3f');
    expect(tokens.map((t) => [t.text, t.kind, t.line])).toEqual([
      ['a', 'identifier', 1],
      ['b', 'identifier', 1],
      ['\u00e9t\u00e9', 'identifier', 2],
      ['1.5e', 'number', 2],
      ['-', 'punctuation', 2],
      ['3f', 'number', 2],
    ]);
  });

  it('declarations: attributes with expressions, var templates, signatures with trailing commas, aliases, mentions', () => {
    const source = [
      'enable f16;',
      '@group(0) @binding(4+5) var<storage, read> c: array<f32>;',
      'alias Index = u32;',
      'struct Pair { x: f32, y: f32, }',
      '@must_use fn forward(row: Index, i: u32,) -> @location(0) f32 {',
      '  let p = Pair(c[i], helper(row),);',
      '  return p.x;',
      '}',
    ].join('\n');
    const found = declarations(source);
    expect(found.map((d) => [d.keyword, d.name, d.line])).toEqual([
      ['enable', 'f16', 1],
      ['var', 'c', 2],
      ['alias', 'Index', 3],
      ['struct', 'Pair', 4],
      ['fn', 'forward', 5],
    ]);
    expect(found[1].attributes).toEqual([{ name: 'group', args: '0' }, { name: 'binding', args: '4+5' }]);
    expect(found[1].template).toEqual(['storage', 'read']);
    expect(found[2].aliased).toBe('u32');
    const fn = found[4];
    expect(fn.parameterTypes).toEqual(['Index', 'u32']);
    expect(fn.returnType).toBe('f32');
    expect([...fn.mentions].sort()).toEqual(['Pair', 'c', 'helper', 'i', 'let', 'p', 'return', 'row']);
  });

  it('structural problems, with their lines', () => {
    expect(structureProblem('fn f() {}\nstruct S { a: f32 };\nconst k = 1;')).toBeNull();
    expect(structureProblem('fn f() {}\n/* open /* nested */')).toEqual({ line: 2, message: 'this block comment (/*) is never closed' });
    expect(structureProblem('fn f() {\n  if (x) {\n}')?.line).toBe(1);
    expect(structureProblem('fn f() { (] }')?.message).toMatch(/'\]' closes the '\(' of line 1/);
    expect(structureProblem('fn f() {}\nconst k =')?.message).toMatch(/'const' is not finished/);
    expect(structureProblem('}')?.message).toBe("'}' closes nothing");
  });

  it('module-scope names of a source: declared and used-undeclared, without locals or members', () => {
    const names = moduleScopeNames('struct S { m: u32 }\nvar<private> g: S;\nfn f(p: u32) -> f32 { let l = g.m + p; return select(1.0, 0.0, l > 0u); }');
    expect([...names].sort()).toEqual(['S', 'f', 'f32', 'fn', 'g', 'let', 'private', 'return', 'select', 'struct', 'u32', 'var'].sort());
  });
});
