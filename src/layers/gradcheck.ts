/**
 * `gradcheck`: a layer's adjoint against central finite differences of its own forward, both on
 * the GPU — what a user runs before trusting a layer they wrote.
 *
 * For each input (u, Qd, every parameter) and a few random directions v it compares
 *   analytic  ⟨∂x, v⟩          (the adjoint's gradient for cotangent ȳ)
 *   numeric   (⟨ȳ, f(x + h·v)⟩ − ⟨ȳ, f(x − h·v)⟩) / 2h
 * accumulating the dot products in float64 on the CPU. A check passes when
 *   |analytic − numeric| ≤ tolerance · max(|analytic|, |numeric|) + noise,
 * where `noise` bounds the float32 rounding of the two forward evaluations:
 * 2⁻²¹ · Σᵢ |ȳᵢ| (|f(x + h·v)ᵢ| + |f(x − h·v)ᵢ|) / 2h.
 */
import { F32_MAX, readBoolean, readInteger, readLayer, readNumber, readOptions } from '../validate';
import { Tensor } from '../tensor';
import type { ImplicitLayer } from './layer';

/** Options of {@link gradcheck}. */
export interface GradcheckOptions {
  /** Rows of the state. Default 2. */
  batch?: number;
  /** Seed of the random point, cotangent and directions. Default 1. */
  seed?: number;
  /** Finite-difference step h (directions have entries in [−1, 1]). Default 1e-3. */
  step?: number;
  /** Relative tolerance. Default 1e-2 (float32 forward evaluations). */
  tolerance?: number;
  /** Random directions per input. Default 3. */
  directions?: number;
  /** u and Qd are drawn uniformly from [−scale, scale]. Default 1. */
  scale?: number;
  /** Evaluate in training mode (stochastic layers draw noise from `key`, evaluation 0). Default false. */
  training?: boolean;
  /** The key stochastic layers see with `training`. Default 0. */
  key?: number;
}

/** One input's worst direction. */
export interface GradcheckEntry {
  /** `'u'`, `'Qd'` or a parameter's name. */
  name: string;
  /** ⟨gradient, v⟩ from the adjoint. */
  analytic: number;
  /** The central difference. */
  numeric: number;
  /** |analytic − numeric| / max(|analytic|, |numeric|). */
  relError: number;
  passed: boolean;
}

/** What {@link gradcheck} returns. */
export interface GradcheckReport {
  /** Whether every input passed. */
  passed: boolean;
  /** One entry per input: u, Qd, then the parameters. */
  entries: GradcheckEntry[];
  /** A table of the entries, one line each. */
  toString(): string;
}

/** Most random directions per input (each costs two forward evaluations and a readback). */
const MAX_DIRECTIONS = 1000;

const KNOWN = ['batch', 'seed', 'step', 'tolerance', 'directions', 'scale', 'training', 'key'];

/** Deterministic uniform numbers in [−1, 1) (mulberry32). */
function uniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

/**
 * Checks `layer`'s adjoint (∂u, ∂Qd and every parameter's gradient) against central finite
 * differences of its forward at a random point, and reports per input. Parameters are perturbed
 * in place and restored afterwards. Float32 forward evaluations limit the agreement to about
 * 1e-3 relative for smooth layers; kinks (relu) crossed within ±h can fail a direction, so use a
 * small `step` for them.
 *
 * ```ts
 * const report = await gradcheck(f, { batch: 3 });
 * if (!report.passed) console.log(report.toString());
 * ```
 *
 * @throws OptionError (`'options.<name>'`, `'f'`: not a layer), LimitError, DeviceLostError.
 */
export async function gradcheck(layer: ImplicitLayer, options?: GradcheckOptions): Promise<GradcheckReport> {
  readLayer(layer, 'f');
  const o = readOptions(options, 'options', KNOWN);
  const batch = readInteger(o.batch, 'options.batch', 2, 1);
  const step = readNumber(o.step, 'options.step', 1e-3, { above: 0 });
  const tolerance = readNumber(o.tolerance, 'options.tolerance', 1e-2, { above: 0 });
  const directions = readInteger(o.directions, 'options.directions', 3, 1, MAX_DIRECTIONS);
  const scale = readNumber(o.scale, 'options.scale', 1, { above: 0, max: F32_MAX });
  const seed = readInteger(o.seed, 'options.seed', 1, Number.MIN_SAFE_INTEGER);
  const key = readInteger(o.key, 'options.key', 0, 0, 0xffffffff);
  const training = readBoolean(o.training, 'options.training', false);
  const { engine, featureSize } = layer;
  engine.assertAlive('gradcheck');
  await engine.settleWraps();
  for (const [name, param] of Object.entries(layer.params)) param.assertUsable(engine, `f.params.${name}`);
  const n = batch * featureSize;
  engine.assertFits(n * 4, 'options.batch');
  const random = uniform(seed);
  const draw = (count: number, s = 1) => Float32Array.from({ length: count }, () => random() * s);

  const u = draw(n, scale);
  const qd = draw(n, scale);
  const gOut = draw(n);
  await layer.prepare(batch);
  const gate = engine.allocate(16, 'gate');
  engine.device.queue.writeBuffer(gate, 0, Uint32Array.from([0, 0, key, training ? 1 : 0]));
  const tensors: Tensor[] = [];
  const upload = (values: Float32Array) => {
    const t = engine.tensor(values, [values.length]);
    tensors.push(t);
    return t;
  };
  const scratch = (count: number) => {
    const t = new Tensor(engine, engine.allocate(count * 4, 'gradcheck'), [count], true);
    tensors.push(t);
    return t;
  };
  const submit = (encode: (pass: GPUComputePassEncoder) => void): Promise<void> => engine.submitPass('gradcheck', encode);
  try {
    const uT = upload(u);
    const qdT = upload(qd);
    const gOutT = upload(gOut);
    const output = scratch(n);
    const gradU = scratch(n);
    const gradQd = scratch(n);
    const gradParams: Record<string, GPUBuffer> = {};
    const gradTensors: Record<string, Tensor> = {};
    for (const [name, param] of Object.entries(layer.params)) {
      gradTensors[name] = scratch(param.size);
      gradParams[name] = gradTensors[name].buffer;
    }
    await submit((pass) =>
      layer.encodeAdjoint(pass, { input: uT.buffer, Qd: qdT.buffer, gradOutput: gOutT.buffer, gradInput: gradU.buffer, gradQd: gradQd.buffer, gradParams, gate }, batch),
    );

    /** ⟨ȳ, f(u', Qd')⟩ and Σ|ȳ|·|f| at a point whose inputs are the given buffers. */
    const probe = async (input: GPUBuffer, Qd: GPUBuffer): Promise<{ value: number; magnitude: number }> => {
      await submit((pass) => layer.encodeForward(pass, { input, output: output.buffer, Qd, gate }, batch));
      const y = await output.read();
      let magnitude = 0;
      for (let i = 0; i < n; i++) magnitude += Math.abs(gOut[i] * y[i]);
      return { value: dot(gOut, y), magnitude };
    };

    /** The worst direction for one input; `evaluate(values)` probes the layer with that input replaced. */
    const check = async (name: string, base: Float32Array, gradient: Float32Array, evaluate: (values: Float32Array) => Promise<{ value: number; magnitude: number }>): Promise<GradcheckEntry> => {
      let worst: GradcheckEntry | undefined;
      let worstExcess = -Infinity;
      for (let k = 0; k < directions; k++) {
        const v = draw(base.length);
        const plus = await evaluate(base.map((x, i) => x + step * v[i]));
        const minus = await evaluate(base.map((x, i) => x - step * v[i]));
        const numeric = (plus.value - minus.value) / (2 * step);
        const analytic = dot(gradient, v);
        const noise = (2 ** -21 * (plus.magnitude + minus.magnitude)) / (2 * step);
        const difference = Math.abs(analytic - numeric);
        const bound = tolerance * Math.max(Math.abs(analytic), Math.abs(numeric)) + noise;
        const relError = difference / Math.max(Math.abs(analytic), Math.abs(numeric), Number.MIN_VALUE);
        const entry = { name, analytic, numeric, relError: difference === 0 ? 0 : relError, passed: difference <= bound };
        if (difference - bound > worstExcess) {
          worstExcess = difference - bound;
          worst = entry;
        }
      }
      return worst as GradcheckEntry;
    };

    const entries: GradcheckEntry[] = [];
    entries.push(await check('u', u, await gradU.read(), async (values) => {
      const t = upload(values);
      return probe(t.buffer, qdT.buffer);
    }));
    entries.push(await check('Qd', qd, await gradQd.read(), async (values) => {
      const t = upload(values);
      return probe(uT.buffer, t.buffer);
    }));
    for (const [name, param] of Object.entries(layer.params)) {
      const original = await param.read();
      try {
        entries.push(await check(name, original, await gradTensors[name].read(), async (values) => {
          await engine.submit('gradcheck', () => engine.device.queue.writeBuffer(param.buffer, 0, values));
          return probe(uT.buffer, qdT.buffer);
        }));
      } finally {
        engine.device.queue.writeBuffer(param.buffer, 0, original);
      }
    }
    return report(entries);
  } finally {
    for (const t of tensors) t.dispose();
    engine.releaseBuffer(gate);
  }
}

function report(entries: GradcheckEntry[]): GradcheckReport {
  const passed = entries.every((e) => e.passed);
  return {
    passed,
    entries,
    toString() {
      const width = Math.max(5, ...entries.map((e) => e.name.length));
      const lines = entries.map(
        (e) => `${e.name.padEnd(width)}  ${e.passed ? 'ok  ' : 'FAIL'}  analytic ${e.analytic.toExponential(4)}  numeric ${e.numeric.toExponential(4)}  rel. error ${e.relError.toExponential(2)}`,
      );
      return `gradcheck ${passed ? 'passed' : 'FAILED'}\n${lines.join('\n')}`;
    },
  };
}
