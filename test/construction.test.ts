// One construction style and one parameter naming: layers, stages and optimizers are factories
// taking the engine first, parameters are `weight`/`bias`, an old-style call fails with a typed
// error that suggests the new name, and the engine module imports no layer, loss or optimizer.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Adam,
  GradientAccumulator,
  OptionError,
  SGD,
  TanhBlock,
  adam,
  gradientAccumulator,
  implicitBlock,
  jfb,
  linear,
  sgd,
  type Engine,
  type LinearGradBuffers,
  type LinearParams,
  type TanhBlockParams,
} from '../src';
import { createTestEngine } from './helpers/engine';
import { expectTyped, thrown } from './helpers/errors';

const D = 4;
let engine: Engine;

beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine.destroy());

/** The OptionError of an old-style call, checked for its argument and its did-you-mean. */
function expectRenamed(fn: () => unknown, argument: string, suggestion: string): void {
  const err = thrown(fn);
  expectTyped(err, OptionError, argument);
  expect((err as OptionError).message).toContain(`did you mean '${suggestion}'?`);
}

describe('old parameter names', () => {
  const weight = new Float32Array(D * D).fill(0.1);
  const bias = new Float32Array(D).fill(0.2);

  it('implicitBlock(engine, { w, b }) names params.w / params.b and suggests weight / bias', () => {
    expectRenamed(() => implicitBlock(engine, { w: weight, b: bias } as unknown as TanhBlockParams), 'params.w', 'weight');
    expectRenamed(() => implicitBlock(engine, { weight, b: bias } as unknown as TanhBlockParams), 'params.b', 'bias');
  });

  it('linear(engine, { W, b }) names params.W / params.b and suggests weight / bias', () => {
    expectRenamed(() => linear(engine, { W: weight, b: bias } as unknown as LinearParams), 'params.W', 'weight');
    expectRenamed(() => linear(engine, { weight, b: bias } as unknown as LinearParams), 'params.b', 'bias');
  });

  it('Linear.encodeBackward refuses the old gradient names dW / db', async () => {
    const layer = linear(engine, { weight, bias });
    await layer.prepare();
    const x = engine.zeros([1, D]);
    const encoder = engine.device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    const old = { dW: engine.zeros([D, D]) } as unknown as LinearGradBuffers;
    expectRenamed(() => layer.encodeBackward(pass, x, x, old, 1), 'grads.dW', 'weight');
    pass.end();
    encoder.finish();
    layer.dispose();
  });

  it('the new names build the layers, whose params and gradients are weight / bias', async () => {
    const f = implicitBlock(engine, { weight, bias });
    expect(f).toBeInstanceOf(TanhBlock);
    expect(Object.keys(f.params)).toEqual(['weight', 'bias']);
    expect(Array.from(await f.params.weight.read())).toEqual(Array.from(weight));
    const out = await jfb(f, engine.zeros([2, D]));
    const grads = await out.backward(engine.zeros([2, D]));
    expect(Object.keys(grads).sort()).toEqual(['Qd', 'bias', 'weight']);
    expect(grads.weight.shape).toEqual([D, D]);
    expect(grads.bias.shape).toEqual([D]);
    const dense = linear(engine, { weight, bias });
    expect(Object.keys(dense.params)).toEqual(['weight', 'bias']);
    const linearGrads = await dense.backward(engine.zeros([3, D]), engine.zeros([3, D]));
    expect(Object.keys(linearGrads).filter((k) => linearGrads[k as keyof typeof linearGrads] !== undefined).sort()).toEqual(['bias', 'weight']);
    f.dispose();
    dense.dispose();
  });
});

describe('optimizers and the accumulator are factories taking the engine first', () => {
  it('adam, sgd and gradientAccumulator build on the given engine', () => {
    const p = engine.zeros([D]);
    const a = adam(engine, [p], { lr: 0.1 });
    const s = sgd(engine, [p], { lr: 0.1 });
    const acc = gradientAccumulator(engine, [p]);
    expect(a).toBeInstanceOf(Adam);
    expect(s).toBeInstanceOf(SGD);
    expect(acc).toBeInstanceOf(GradientAccumulator);
    for (const made of [a, s, acc]) expect(made.engine).toBe(engine);
    for (const made of [a, s, acc]) made.dispose();
  });

  it('refuses something that is not an engine in first place (the old argument order)', () => {
    const p = engine.zeros([D]);
    const notEngine = [p] as unknown as Engine;
    expectTyped(thrown(() => adam(notEngine, [p])), OptionError, 'engine');
    expectTyped(thrown(() => sgd(notEngine, [p])), OptionError, 'engine');
    expectTyped(thrown(() => gradientAccumulator(notEngine, [p])), OptionError, 'engine');
    expectTyped(thrown(() => implicitBlock({} as Engine, { weight: [1], bias: [1] })), OptionError, 'engine');
  });

  it('the engine has no implicitBlock, adam or sgd method any more', () => {
    const methods = engine as unknown as Record<string, unknown>;
    for (const name of ['implicitBlock', 'adam', 'sgd']) expect(methods[name]).toBeUndefined();
  });
});

describe('src/engine.ts', () => {
  it('imports nothing from src/layers, src/optim or src/losses', () => {
    const source = readFileSync(new URL('../src/engine.ts', import.meta.url), 'utf8');
    const imports = [...source.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms)].map((m) => m[1]);
    // Not vacuous: the engine does import its GPU helpers.
    expect(imports).toContain('./gpu/kernel');
    expect(imports.filter((path) => /^\.\/(layers|optim|losses)(\/|$)/.test(path))).toEqual([]);
    // And no dynamic import() sneaks one in.
    expect(source).not.toMatch(/import\(\s*'\.\/(layers|optim|losses)/);
  });
});
