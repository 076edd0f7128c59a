// The workgroup reduction, both ways: lib/reduce.wgsl (portable) and lib/reduce_subgroups.wgsl
// (register shuffles, on devices with the `subgroups` feature), at the two REDUCE_SIZEs the
// library uses. Each is held to the order lib/reduce.wgsl documents (neighbours first: level s
// adds slot i + s into slot i for i a multiple of 2s), modelled here in float32 arithmetic, and to
// the float64 sum within that order's error bound; every lane must get the same bits, two calls in
// a row must not disturb each other, and reruns give the same bits. Then the library's own kernels
// (the solvers' reductions) give the same bits on an engine that compiles the subgroup variants as
// on one whose device lacks the feature.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { anderson, broyden, implicitBlock, picard, type Engine, type ImplicitLayer, type SolveResult, type SolverOptions, type Tensor } from '../src';
import { SHADERS, subgroupSource, type ShaderName } from '../src/gpu/shaders';
import { createPortableEngine, createTestEngine, randomArray, rng } from './helpers/engine';

type Solver = (f: ImplicitLayer, Qd: Tensor, options?: SolverOptions) => Promise<SolveResult>;

const piece = (file: string): string => readFileSync(fileURLToPath(new URL(`../shaders/lib/${file}`, import.meta.url)), 'utf8');
const GROUPS = 5;

/** A kernel that reduces each workgroup's REDUCE_SIZE vec4s twice: the values, then the same values with their components reversed. */
function reduceKernel(size: number, subgroups: boolean): string {
  return [
    subgroups ? 'enable subgroups;' : '',
    `const REDUCE_SIZE: u32 = ${size}u;`,
    '@group(0) @binding(0) var<storage, read> input: array<vec4<f32>>;',
    '@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;',
    piece(subgroups ? 'reduce_subgroups.wgsl' : 'reduce.wgsl'),
    `@compute @workgroup_size(${size})`,
    'fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) group: vec3u) {',
    '  let i = group.x * REDUCE_SIZE + lid;',
    '  let first = workgroup_sum(input[i], lid);',
    '  let second = workgroup_sum(input[i].wzyx, lid);',
    '  out[2u * i] = first;',
    '  out[2u * i + 1u] = second;',
    '}',
  ].join('\n');
}

/** float32 values of mixed magnitudes (2^-8 … 2^8) and signs: sums with cancellation, rounding at every level. */
function mixedValues(count: number, seed: number): Float32Array {
  const random = rng(seed);
  return Float32Array.from(randomArray(random, count, 1), (v) => v * 2 ** Math.floor(17 * random() - 8));
}

/** The documented tree in float32 (Math.fround of a double sum of two floats is the float sum, correctly rounded). */
function treeSum(values: ArrayLike<number>): number {
  const slots = Float64Array.from(values);
  for (let stride = 1; stride < slots.length; stride *= 2) {
    for (let slot = 0; slot < slots.length; slot += 2 * stride) slots[slot] = Math.fround(slots[slot] + slots[slot + stride]);
  }
  return slots[0];
}

/** Every workgroup's component c, as the tree sums it. */
function column(values: Float32Array, size: number, group: number, c: number): number[] {
  return Array.from({ length: size }, (_, t) => values[4 * (group * size + t) + c]);
}

let engine: Engine;
let portable: { engine: Engine; device: GPUDevice };

beforeAll(async () => {
  engine = await createTestEngine();
  portable = await createPortableEngine();
});

afterAll(() => {
  engine?.destroy();
  portable?.engine.destroy();
  portable?.device.destroy();
});

async function runReduce(on: Engine, size: number, subgroups: boolean, input: Float32Array): Promise<Float32Array> {
  const kernel = await on.kernel(`test.reduce${size}${subgroups ? '.subgroups' : ''}`, reduceKernel(size, subgroups));
  const inBuffer = on.tensor(input, [input.length]);
  const out = on.zeros([2 * input.length]);
  await on.submitPass('reduce test', (pass) => kernel.dispatch(pass, kernel.bind({ input: inBuffer.buffer, out: out.buffer }), GROUPS));
  const values = await out.read();
  inBuffer.dispose();
  out.dispose();
  return values;
}

describe('workgroup_sum', () => {
  it('the engine asks for subgroups where the adapter offers them (SwiftShader and the GPUs the library targets do); an app device without them is used without', () => {
    expect(engine.device.features.has('subgroups')).toBe(true);
    expect(engine.subgroups).toBe(true);
    expect(portable.engine.subgroups).toBe(false);
  });

  describe.each([64, 256])('REDUCE_SIZE = %i', (size) => {
    const input = mixedValues(4 * GROUPS * size, size);
    const results = new Map<boolean, Float32Array>();

    it.each([false, true])('subgroups %s: the documented order, in every lane, within the float64 bound; two calls in a row', async (subgroups) => {
      const out = await runReduce(subgroups ? engine : portable.engine, size, subgroups, input);
      results.set(subgroups, out);
      const levels = Math.log2(size);
      for (let g = 0; g < GROUPS; g++) {
        for (let c = 0; c < 4; c++) {
          const terms = column(input, size, g, c);
          const expected = treeSum(terms);
          const exact = terms.reduce((a, b) => a + b, 0);
          const bound = levels * 2 ** -24 * terms.reduce((a, b) => a + Math.abs(b), 0);
          expect(Math.abs(expected - exact)).toBeLessThanOrEqual(bound);
          for (let t = 0; t < size; t++) {
            const i = g * size + t;
            expect(out[8 * i + c], `group ${g} lane ${t} component ${c}`).toBe(expected);
            // The second call summed the components reversed: component c of it is the first's 3 − c.
            expect(out[8 * i + 4 + (3 - c)], `second call, group ${g} lane ${t}`).toBe(expected);
          }
        }
      }
    });

    it('both ways give the same bits, and a rerun gives them again', async () => {
      const [portableOut, subgroupOut] = [results.get(false), results.get(true)];
      if (!portableOut || !subgroupOut) throw new Error('the runs above did not complete');
      expect(subgroupOut).toEqual(portableOut);
      expect(await runReduce(engine, size, true, input)).toEqual(subgroupOut);
      expect(await runReduce(portable.engine, size, false, input)).toEqual(portableOut);
    });
  });

  it('the bit comparisons can fail: another order of the same additions gives other bits on this data', () => {
    const values = mixedValues(4 * 64, 64);
    const differs = [0, 1, 2, 3].filter((c) => {
      const terms = column(values, 64, 0, c);
      return terms.reduce((a, b) => Math.fround(a + b), 0) !== treeSum(terms);
    });
    expect(differs.length).toBeGreaterThan(0);
  });
});

describe("the library's kernels with and without subgroups", () => {
  it('every subgroup variant compiles on this device (and exactly the kernels with a reduction have one)', async () => {
    const names = Object.keys(SHADERS) as ShaderName[];
    const variants = names.filter((name) => subgroupSource(SHADERS[name]) !== undefined);
    expect(variants.length).toBeGreaterThanOrEqual(15);
    for (const name of variants) {
      const module = engine.device.createShaderModule({ code: subgroupSource(SHADERS[name]) as string });
      const errors = (await module.getCompilationInfo()).messages.filter((m) => m.type === 'error').map((m) => m.message);
      expect(errors, name).toEqual([]);
    }
    expect(variants.every((name) => SHADERS[name].includes('fn workgroup_sum('))).toBe(true);
    expect(names.filter((name) => !variants.includes(name)).some((name) => SHADERS[name].includes('fn workgroup_sum('))).toBe(false);
  });

  it.each<[string, Solver]>([
    ['picard', picard],
    ['anderson', anderson],
    ['broyden', broyden],
  ])('%s: the same iterates, bit for bit, on both engines', async (_name, solve) => {
    const D = 24;
    const random = rng(11);
    const weight = Float32Array.from(randomArray(random, D * D, 0.35 / Math.sqrt(D)));
    const bias = Float32Array.from(randomArray(random, D, 0.2));
    const qd = Float32Array.from(randomArray(random, 3 * D, 1));
    const outcomes: { u: Float32Array; steps: number; residual: number }[] = [];
    for (const on of [engine, portable.engine]) {
      const f = implicitBlock(on, { weight, bias });
      const input = on.tensor(qd, [3, D]);
      const out = await solve(f, input, { eps: 1e-6, maxDepth: 40, checkEvery: 4 });
      outcomes.push({ u: await out.uStar.read(), steps: out.stats.nstep, residual: out.stats.absResidual });
      out.dispose();
      input.dispose();
      f.dispose();
    }
    const [withSubgroups, without] = outcomes;
    expect(withSubgroups?.steps).toBeGreaterThan(2);
    expect(withSubgroups).toEqual(without);
  });
});
