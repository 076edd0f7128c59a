// engine.scope and engine.keep on Dawn: a training step's tensors are disposed except what is
// returned, nesting hands kept tensors outwards, throws still clean up, wrapped buffers survive,
// and overlapping (concurrent) scopes are refused without disposing anything of theirs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, OptionError, ScopeError, Tensor, broyden, gdeq, mse, picard, adam, gradientAccumulator, implicitBlock } from '../src';
import { BufferUsage } from '../src/gpu/flags';
import { createTestEngine, maxAbsDiff, randomArray, rng } from './helpers/engine';
import { expectError } from './helpers/layers';

let engine: Engine;
beforeAll(async () => {
  engine = await createTestEngine();
});
afterAll(() => engine?.destroy());

const random = rng(77);
const d = 8;
const values = (n: number, scale: number): Float32Array => Float32Array.from(randomArray(random, n, scale));

/** Every Tensor among the values of `object` (one level, as results hold them). */
function tensorsOf(object: object): Tensor[] {
  return Object.values(object).filter((v): v is Tensor => v instanceof Tensor);
}

/** Waits for a scope that should reject and returns its error. */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(() => undefined, (err: unknown) => err);
}

describe('engine.scope', () => {
  it('disposes a whole training step except what it returns; outside tensors are untouched', async () => {
    const w = engine.tensor(values(d * d, 0.3 / Math.sqrt(d)), [d, d]);
    const b = engine.tensor(values(d, 0.1), [d]);
    const f = implicitBlock(engine, { weight: w, bias: b });
    const Qd = engine.tensor(values(2 * d, 1), [2, d]);
    const target = engine.tensor(values(2 * d, 0.5), [2, d]);
    const optimizer = adam(engine, [w, b], { lr: 1e-2 });
    const made: Tensor[] = [];
    const wBefore = await w.read();
    const kept = await engine.scope(async () => {
      const out = await gdeq(f, Qd, { solver: broyden, eps: 1e-4 });
      const loss = await mse(out.uStar, target);
      const grads = await out.backward(loss.grad);
      await optimizer.step([grads.weight, grads.bias]);
      const extra = engine.zeros([3]);
      made.push(out.uStar, out.uPrev, loss.grad, loss.total, ...tensorsOf(grads), extra);
      return { value: await loss.value(), gradQd: grads.Qd };
    });
    expect(kept.value).toBeGreaterThan(0);
    expect(kept.gradQd.disposed).toBe(false);
    expect(made.filter((t) => t.disposed)).toHaveLength(made.length - 1);
    for (const t of [w, b, Qd, target]) expect(t.disposed).toBe(false);
    // The optimizer's moments were made outside and still work: a second step changes w again.
    const wAfter = await w.read();
    expect(maxAbsDiff(wAfter, wBefore)).toBeGreaterThan(0);
    const again = await engine.scope(async () => {
      const out = await gdeq(f, Qd, { solver: broyden, eps: 1e-4 });
      const loss = await mse(out.uStar, target);
      const grads = await out.backward(loss.grad);
      await optimizer.step([grads.weight, grads.bias]);
      return loss.value();
    });
    expect(again).toBeLessThan(kept.value);
    kept.gradQd.dispose();
    optimizer.dispose();
    for (const t of [w, b, Qd, target]) t.dispose();
  });

  it('a returned result keeps what its backward needs (Broyden factors, Qd, the layer made inside)', async () => {
    const target = engine.tensor(values(d, 0.5), [d]);
    const inside: Tensor[] = [];
    const out = await engine.scope(async () => {
      const f = implicitBlock(engine, { weight: values(d * d, 0.3 / Math.sqrt(d)), bias: values(d, 0.1) });
      const Qd = engine.tensor(values(d, 1), [d]);
      const scratch = engine.tensor(values(d, 1), [d]);
      inside.push(Qd, scratch, ...Object.values(f.params));
      return gdeq(f, Qd, { solver: broyden, eps: 1e-5 });
    });
    expect(inside.map((t) => t.disposed)).toEqual([false, true, false, false]);
    const loss = await mse(out.uStar, target);
    const grads = await out.backward(loss.grad);
    const gw = await grads.weight.read();
    expect(gw.some((v) => v !== 0)).toBe(true);
    for (const t of [...tensorsOf(grads), loss.grad, loss.total, target, inside[0], inside[2], inside[3]]) t.dispose();
    out.dispose();
  });

  it('nests: kept tensors move to the enclosing scope; keep() escapes every scope', async () => {
    let inner: Tensor | undefined;
    let escaped: Tensor | undefined;
    let dropped: Tensor | undefined;
    const outer = await engine.scope(async () => {
      inner = await engine.scope(() => {
        dropped = engine.zeros([2]);
        escaped = engine.keep(engine.zeros([2]));
        return engine.zeros([4]);
      });
      expect(dropped?.disposed).toBe(true);
      expect(inner.disposed).toBe(false);
      return [engine.zeros([1])];
    });
    expect(inner?.disposed).toBe(true); // handed to the outer scope, which did not return it
    expect(escaped?.disposed).toBe(false);
    expect(outer[0].disposed).toBe(false);
    escaped?.dispose();
    outer[0].dispose();
  });

  it('keeps tensors in returned Maps and Sets; disposes everything when fn throws', async () => {
    const box = await engine.scope(() => ({ map: new Map([['a', engine.zeros([1])]]), set: new Set([engine.zeros([1])]) }));
    expect(box.map.get('a')?.disposed).toBe(false);
    expect([...box.set][0].disposed).toBe(false);
    box.map.get('a')?.dispose();
    for (const t of box.set) t.dispose();
    let made: Tensor | undefined;
    const err = await failure(engine.scope(async () => {
      made = engine.zeros([5]);
      await picard(implicitBlock(engine, { weight: values(d * d, 0.1), bias: values(d, 0.1) }), engine.tensor(values(d, 1), [d]), { maxDepth: 0 });
    }));
    expect(err).toBeInstanceOf(OptionError);
    expect(made?.disposed).toBe(true);
  });

  it("a wrapped tensor is disposed as a view: the caller's buffer stays usable", async () => {
    const buffer = engine.device.createBuffer({ size: 16, usage: BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST });
    engine.device.queue.writeBuffer(buffer, 0, new Float32Array([1, 2, 3, 4]));
    const view = await engine.scope(() => {
      const wrapped = engine.wrap(buffer, [4]);
      return { copy: wrapped.shape, wrapped };
    });
    expect(view.wrapped.disposed).toBe(false);
    view.wrapped.dispose();
    let inside: Tensor | undefined;
    await engine.scope(() => {
      inside = engine.wrap(buffer, [4]);
    });
    expect(inside?.disposed).toBe(true);
    expect(Array.from(await engine.wrap(buffer, [4]).read())).toEqual([1, 2, 3, 4]);
    buffer.destroy();
  });

  it('overlapping scopes (two concurrent flows) throw ScopeError and dispose nothing of either', async () => {
    let releaseA!: () => void;
    const gateA = new Promise<void>((resolve) => {
      releaseA = resolve;
    });
    const fromA: Tensor[] = [];
    const fromB: Tensor[] = [];
    const a = engine.scope(async () => {
      fromA.push(engine.zeros([1]));
      await gateA;
      fromA.push(engine.zeros([1]));
    });
    let releaseB!: () => void;
    const gateB = new Promise<void>((resolve) => {
      releaseB = resolve;
    });
    const b = engine.scope(async () => {
      fromB.push(engine.zeros([1]));
      await gateB;
    });
    releaseA(); // A ends while B, opened after it, is still open: not nesting
    const errA = await failure(a);
    releaseB();
    const errB = await failure(b);
    for (const err of [errA, errB]) {
      expectError(() => {
        throw err;
      }, ScopeError, 'engine.scope');
    }
    expect([...fromA, ...fromB].map((t) => t.disposed)).toEqual([false, false, false]);
    for (const t of [...fromA, ...fromB]) t.dispose();
    // Afterwards the engine's scopes work normally again.
    let after: Tensor | undefined;
    await engine.scope(() => {
      after = engine.zeros([1]);
    });
    expect(after?.disposed).toBe(true);
  });

  it('a lazily made accumulator mean is not disposed by the scope it was first made in', async () => {
    const p = engine.zeros([3]);
    const acc = gradientAccumulator(engine, [p]);
    await engine.scope(async () => {
      await acc.add([engine.tensor([1, 2, 3], [3])]);
      await acc.mean();
    });
    const [mean] = await acc.mean();
    expect(Array.from(await mean.read())).toEqual([1, 2, 3]);
    acc.dispose();
    p.dispose();
  });

  it('the leakWarnings option is validated like every option', async () => {
    const err = await failure(Engine.create({ leakWarning: false } as never));
    expectError(() => {
      throw err;
    }, OptionError, 'options.leakWarning');
    expect((err as Error).message).toMatch(/did you mean 'leakWarnings'/);
    expectError(() => Engine.fromDevice(engine.device, { leakWarnings: 'no' as never }), OptionError, 'options.leakWarnings');
    expect(() => Engine.fromDevice(engine.device, { leakWarnings: 'no' as never })).toThrow(/must be true, false or 'trace', got "no"/);
    expect(Engine.fromDevice(engine.device, { leakWarnings: 'trace' })).toBeInstanceOf(Engine);
  });

  it('solver results returned whole keep uStar and uPrev', async () => {
    const f = implicitBlock(engine, { weight: values(d * d, 0.2), bias: values(d, 0.1) });
    const Qd = engine.tensor(values(d, 1), [d]);
    const result = await engine.scope(() => broyden(f, Qd, { eps: 1e-5 }));
    expect((await result.uStar.read()).length).toBe(d);
    expect(result.uPrev.disposed).toBe(false);
    result.dispose();
    Qd.dispose();
  });
});
