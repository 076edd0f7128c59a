// User-written WGSL layers (defineLayer): a per-feature scaled tanh layer against a float64
// twin (forward, every adjoint output, solves, training), its use as a sequential stage,
// gradcheck passing on it and catching deliberately wrong adjoints, and every definition error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AnchoraxError,
  broyden,
  defineLayer,
  gdeq,
  gradcheck,
  linear,
  mse,
  OptionError,
  picard,
  sequential,
  ShaderCompileError,
  ShapeError,
  tanh,
  add,
  Qd,
  type Engine,
  type LayerDefinition,
  adam,
} from '../src';
import { refPicard, refSequentialForward } from '../src/reference';
import { createTestEngine, maxAbsDiff, randomArray, rng, rejectsWith, f32 } from './helpers/engine';
import { SCALED_TANH_FORWARD as FORWARD, layerAdjoint, layerForward, scaledTanhAdjoint as adjointSource } from './helpers/layers';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());


/** f(u) = tanh(a ⊙ u + Qd) and its VJP in float64. */
function reference(a: Float64Array, d: number) {
  const forward = (u: Float64Array, qd: Float64Array) => Float64Array.from(u, (v, k) => Math.tanh(a[k % d] * v + qd[k]));
  const vjp = (u: Float64Array, qd: Float64Array, g: Float64Array) => {
    const y = forward(u, qd);
    const slope = Float64Array.from(g, (v, k) => v * (1 - y[k] * y[k]));
    const da = new Float64Array(d);
    slope.forEach((s, k) => (da[k % d] += s * u[k]));
    return { du: Float64Array.from(slope, (s, k) => s * a[k % d]), dQd: slope, da };
  };
  return { forward, vjp };
}

const d = 11;
const batch = 3;
const random = rng(5);
const a = f32(randomArray(random, d, 0.8));
const u = f32(randomArray(random, batch * d, 1));
const qd = f32(randomArray(random, batch * d, 1));
const g = f32(randomArray(random, batch * d, 1));

const definition = (overrides: Partial<LayerDefinition> = {}): LayerDefinition => ({
  featureSize: d,
  params: { a: Float32Array.from(a) },
  forward: FORWARD,
  adjoint: adjointSource(),
  name: 'scaled tanh',
  ...overrides,
});

describe('a user WGSL layer f(u) = tanh(a ⊙ u + Qd)', () => {
  const ref = reference(a, d);

  it('forward and every adjoint output equal the float64 twin (batch 1 and 3)', async () => {
    const f = await defineLayer(engine, definition());
    for (const rows of [1, batch]) {
      const n = rows * d;
      const [uu, qq, gg] = [u.slice(0, n), qd.slice(0, n), g.slice(0, n)];
      expect(maxAbsDiff(await layerForward(f, uu, qq, rows), ref.forward(uu, qq))).toBeLessThan(1e-6);
      const expected = ref.vjp(uu, qq, gg);
      const grads = await layerAdjoint(f, uu, qq, gg, rows, { add: gg });
      expect(maxAbsDiff(grads.du, expected.du.map((v, k) => v + gg[k]))).toBeLessThan(1e-6);
      expect(maxAbsDiff(grads.dQd, expected.dQd)).toBeLessThan(1e-6);
      expect(maxAbsDiff(grads.dParams.a, expected.da)).toBeLessThan(1e-5);
    }
  });

  it('solves like the reference: picard and broyden', async () => {
    const f = await defineLayer(engine, definition());
    const Qdt = engine.tensor(Float32Array.from(qd), [batch, d]);
    const expected = refPicard((x) => ref.forward(x, qd), new Float64Array(batch * d), { eps: 0, maxDepth: 15 });
    const solved = await picard(f, Qdt, { eps: 0, maxDepth: 15 });
    expect(solved.tnstep).toBe(expected.tnstep);
    expect(maxAbsDiff(await solved.uStar.read(), expected.uStar)).toBeLessThan(1e-5);
    const viaBroyden = await broyden(f, Qdt, { eps: 1e-6, maxDepth: 40 });
    expect(viaBroyden.stats.converged).toBe(true);
    expect(maxAbsDiff(await viaBroyden.uStar.read(), refPicard((x) => ref.forward(x, qd), new Float64Array(batch * d), { eps: 1e-12, maxDepth: 500 }).uStar)).toBeLessThan(1e-5);
  });

  it('trains: gdeq + broyden + Adam lower the loss toward a target fixed point', async () => {
    const f = await defineLayer(engine, definition({ params: { a: engine.tensor(new Float32Array(d).fill(0.1), [d]) } }));
    const Qdt = engine.tensor(Float32Array.from(qd), [batch, d]);
    // The fixed point for the hidden a: u* = tanh(a ⊙ u* + Qd).
    const target = refPicard((x) => ref.forward(x, qd), new Float64Array(batch * d), { eps: 1e-12, maxDepth: 500 }).uStar;
    const targetT = engine.tensor(Float32Array.from(target), [batch, d]);
    const optimizer = adam(engine, [f.params.a], { lr: 0.05 });
    const losses: number[] = [];
    for (let step = 0; step < 40; step++) {
      const result = await gdeq(f, Qdt, { eps: 1e-5, maxDepth: 30 });
      const loss = await mse(result.uStar, targetT);
      if (step % 10 === 0 || step === 39) losses.push(await loss.value());
      const grads = await result.backward(loss.grad);
      await optimizer.step([grads.a]);
      result.dispose();
      loss.dispose();
    }
    expect(losses[losses.length - 1]).toBeLessThan(losses[0] / 10);
    expect(maxAbsDiff(await f.params.a.read(), a)).toBeLessThan(maxAbsDiff(new Float32Array(d).fill(0.1), a));
  });

  it('is a stage of a sequential layer too', async () => {
    const custom = await defineLayer(engine, definition());
    const W = f32(randomArray(rng(9), d * d, 0.3));
    const bias = new Float32Array(d);
    const f = sequential(linear(engine, { weight: Float32Array.from(W), bias: bias }), custom);
    expect(Object.keys(f.params)).toEqual(['0.weight', '0.bias', '1.a']);
    const lin = (x: Float64Array) => {
      const out = new Float64Array(x.length);
      for (let r = 0; r < x.length / d; r++) for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) out[r * d + j] += x[r * d + k] * W[k * d + j];
      return out;
    };
    const expected = refSequentialForward([{ forward: lin, vjp: () => ({ dx: new Float64Array(0) }) }, { forward: ref.forward, vjp: () => ({ dx: new Float64Array(0) }) }], u, qd);
    expect(maxAbsDiff(await layerForward(f, u, qd, batch), expected)).toBeLessThan(1e-5);
    expect((await gradcheck(f, { batch: 2 })).passed).toBe(true);
  });
});

describe('gradcheck', () => {
  it('passes a correct layer and reports every input', async () => {
    const report = await gradcheck(await defineLayer(engine, definition()), { batch: 3 });
    expect(report.entries.map((e) => e.name)).toEqual(['u', 'Qd', 'a']);
    expect(report.passed).toBe(true);
    expect(report.toString()).toMatch(/gradcheck passed/);
  });

  it('catches a wrong parameter gradient and a wrong input gradient, naming them', async () => {
    const wrongA = await gradcheck(await defineLayer(engine, definition({ adjoint: adjointSource(' * 1.1') })));
    expect(wrongA.passed).toBe(false);
    expect(wrongA.entries.filter((e) => !e.passed).map((e) => e.name)).toEqual(['a']);
    const wrongInput = await gradcheck(
      await defineLayer(engine, definition({ adjoint: adjointSource().replace('return slope(row, i) * a[i];', 'return slope(row, i);') })),
    );
    expect(wrongInput.entries.filter((e) => !e.passed).map((e) => e.name)).toEqual(['u']);
    expect(wrongInput.toString()).toMatch(/FAIL/);
  });

  it('passes the built-in composed layers', async () => {
    const W = Float32Array.from(randomArray(rng(3), 7 * 7, 0.4));
    const report = await gradcheck(sequential(linear(engine, { weight: W, bias: new Float32Array(7).fill(0.1) }), add(Qd), tanh()), { batch: 2 });
    expect(report.passed).toBe(true);
  });

  it('rejects unknown options', async () => {
    const f = await defineLayer(engine, definition());
    await expect(gradcheck(f, { steps: 3 } as never)).rejects.toThrow(OptionError);
    await expect(gradcheck(f, { batch: 0 })).rejects.toThrow(/options.batch/);
  });
});

describe('defineLayer errors', () => {
  const rejection = (overrides: Partial<LayerDefinition>): Promise<AnchoraxError> => rejectsWith(defineLayer(engine, definition(overrides)));

  it('WGSL that does not compile: the compiler message with the line in the user source', async () => {
    const err = await rejection({ forward: `\nfn forward(row: u32, i: u32) -> f32 {\n  return tanh(a[i] * state(row, i) +);\n}` });
    expect(err).toBeInstanceOf(ShaderCompileError);
    expect(err.argument).toBe('forward');
    expect(err.message).toMatch(/forward WGSL line 3/);
    const adjointErr = await rejection({ adjoint: adjointSource().replace('let y = forward(row, i);', 'let y = forward(row, i)') });
    expect(adjointErr.argument).toBe('adjoint');
    expect(adjointErr.message).toMatch(/adjoint WGSL line \d+/);
  });

  it('an unknown identifier lists the parameters and accessors', async () => {
    const err = await rejection({ forward: FORWARD.replace('a[i]', 'alpha[i]') });
    expect(err).toBeInstanceOf(ShaderCompileError);
    expect(err.message).toMatch(/alpha/);
    expect(err.message).toMatch(/parameters: a;/);
  });

  it('missing or mis-typed entry functions', async () => {
    const noQd = await rejection({ adjoint: adjointSource().replace(/fn grad_qd[^\n]*\n/, '') });
    expect(noQd.argument).toBe('adjoint');
    expect(noQd.message).toMatch(/has no fn grad_qd\(row: u32, i: u32\) -> f32/);
    const noParamGrad = await rejection({ adjoint: adjointSource().replace('fn grad_a(k: u32)', 'fn grad_b(k: u32)') });
    expect(noParamGrad.message).toMatch(/grad_a/);
    const noForward = await rejection({ forward: FORWARD.replace('fn forward', 'fn forwards') });
    expect(noForward.argument).toBe('forward');
    const badSignature = await rejection({ forward: FORWARD.replace('fn forward(row: u32, i: u32) -> f32', 'fn forward(row: u32, i: i32) -> f32') });
    expect(badSignature.message).toMatch(/must be fn forward\(row: u32, i: u32\) -> f32/);
  });

  it('bindings that do not match the declared parameters', async () => {
    const redeclared = await rejection({ forward: `@group(0) @binding(6) var<storage, read> a: array<f32>;\n${FORWARD}` });
    expect(redeclared).toBeInstanceOf(ShaderCompileError);
    expect(redeclared.message).toMatch(/declares the binding "a".*remove this declaration/);
    const undeclared = await rejection({ forward: `@group(0) @binding(7) var<storage, read> c: array<f32>;\n${FORWARD}` });
    expect(undeclared.message).toMatch(/list "c" in params/);
    const unused = await rejection({ params: { a: Float32Array.from(a), c: new Float32Array(3) }, adjoint: `${adjointSource()}\nfn grad_c(k: u32) -> f32 { return 0.0; }` });
    expect(unused.argument).toBe('params.c');
    const strayGrad = await rejection({ adjoint: `${adjointSource()}\nfn grad_z(k: u32) -> f32 { return 0.0; }` });
    expect(strayGrad.message).toMatch(/grad_z but there is no parameter "z"/);
  });

  it('bad definition fields', async () => {
    expect(await rejection({ featureSize: 0 })).toBeInstanceOf(ShapeError);
    expect((await rejection({ params: { state: new Float32Array(2) } })).argument).toBe('params.state');
    expect((await rejection({ forward: 3 as unknown as string })).argument).toBe('forward');
    expect((await rejection({ extra: 1 } as Partial<LayerDefinition>)).argument).toBe('definition.extra');
    expect((await rejection({ params: { a: [1, Number.NaN] } })).argument).toBe('params.a');
  });
});
