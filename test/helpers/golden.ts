// Typed loader of test/fixtures/golden.json (float64 outputs of the original JAX anchorax 0.1.0).
// Option names are mapped to the library's camelCase; arrays become Float64Arrays.
import { readFileSync } from 'node:fs';
import type { RefSolveOptions } from '../../src/reference';

export type GoldenSolver = 'picard' | 'anderson' | 'broyden';

/** One solver run of a golden case. */
export interface GoldenRun {
  name: string;
  solver: GoldenSolver;
  /** The run's kwargs in camelCase (only the ones the original was given; the rest are defaults). */
  options: RefSolveOptions;
  /** The kwargs as stored, with their original names. */
  rawKwargs: Record<string, unknown>;
  tnstep: number;
  uStar: Float64Array;
  uPrev: Float64Array;
  /** ‖f(uStar) − uStar‖ in float64. */
  absResidual: number;
  /** Broyden only: best factors, U dim×L row-major, Vᵀ L×dim row-major. */
  Us?: Float64Array;
  VTs?: Float64Array;
  validMask?: boolean[];
  L?: number;
}

/** Gradients of `loss = sum(uStar * T)` (so `gradUStar = T`). */
export interface GoldenGrad {
  loss: number;
  dW: Float64Array;
  db: Float64Array;
  dQd: Float64Array;
  /** ift_exact only: the tight fixed point it was computed at. */
  uStar?: Float64Array;
  /** ift_exact only: spectral radius of the Jacobian at uStar. */
  spectralRadius?: number;
}

/**
 * One golden problem: f(u, Qd) = tanh(u @ weight + Qd + bias). The fixture stores the original's
 * names `W` and `b`; here they are `weight` and `bias`, the library's names.
 */
export interface GoldenCase {
  name: string;
  seed: number;
  d: number;
  /** Batch size as stored; 0 means an unbatched state of shape [d]. */
  batch: number;
  /** Rows of the flattened state (max(batch, 1)). */
  rows: number;
  scale: number;
  weight: Float64Array;
  bias: Float64Array;
  Qd: Float64Array;
  T: Float64Array;
  /** Runs in file order. */
  runs: GoldenRun[];
  grads: Record<string, GoldenGrad>;
}

interface RawRun {
  kwargs: Record<string, unknown>;
  tnstep: number;
  u_star: number[];
  u_prev: number[];
  abs_residual: number;
  Us?: number[];
  VTs?: number[];
  valid_mask?: boolean[];
  LBFGS?: number;
}

interface RawGrad {
  loss: number;
  dW: number[];
  db: number[];
  dQd: number[];
  u_star?: number[];
  spectral_radius_J?: number;
}

interface RawCase {
  name: string;
  seed: number;
  d: number;
  batch: number;
  scale: number;
  W: number[];
  b: number[];
  Qd: number[];
  T: number[];
  runs: Record<string, RawRun>;
  grads: Record<string, RawGrad>;
}

function solverOf(runName: string): GoldenSolver {
  for (const s of ['picard', 'anderson', 'broyden'] as const) if (runName.startsWith(s)) return s;
  throw new Error(`golden run ${runName}: unknown solver prefix`);
}

/** Map the original keyword arguments to RefSolveOptions; unknown names are an error. */
export function mapGoldenKwargs(kwargs: Record<string, unknown>): RefSolveOptions {
  const o: RefSolveOptions = {};
  for (const [key, value] of Object.entries(kwargs)) {
    switch (key) {
      case 'eps':
        o.eps = Number(value);
        break;
      case 'max_depth':
        o.maxDepth = Number(value);
        break;
      case 'stop_mode':
        if (value !== 'abs' && value !== 'rel') throw new Error(`bad stop_mode ${String(value)}`);
        o.stopMode = value;
        break;
      case 'LBFGS_thres':
        o.lbfgsThres = value === 'None' || value === null ? null : Number(value);
        break;
      case 'ls':
        o.ls = Boolean(value);
        break;
      case 'return_final':
        o.returnFinal = Boolean(value);
        break;
      case 'window_size':
        o.windowSize = Number(value);
        break;
      case 'mixing_param':
        o.mixingParam = Number(value);
        break;
      case 'restarting':
        o.restarting = Boolean(value);
        break;
      default:
        throw new Error(`golden kwarg ${key} has no mapping`);
    }
  }
  return o;
}

const f64 = (x: number[]): Float64Array => Float64Array.from(x);

let cached: GoldenCase[] | undefined;

/** Load and convert the golden fixtures (parsed once per process). */
export function loadGolden(): GoldenCase[] {
  if (cached) return cached;
  const raw = JSON.parse(readFileSync(new URL('../fixtures/golden.json', import.meta.url), 'utf8')) as {
    cases: RawCase[];
  };
  cached = raw.cases.map((c) => ({
    name: c.name,
    seed: c.seed,
    d: c.d,
    batch: c.batch,
    rows: Math.max(c.batch, 1),
    scale: c.scale,
    weight: f64(c.W),
    bias: f64(c.b),
    Qd: f64(c.Qd),
    T: f64(c.T),
    runs: Object.entries(c.runs).map(([name, r]) => ({
      name,
      solver: solverOf(name),
      options: mapGoldenKwargs(r.kwargs),
      rawKwargs: r.kwargs,
      tnstep: r.tnstep,
      uStar: f64(r.u_star),
      uPrev: f64(r.u_prev),
      absResidual: r.abs_residual,
      ...(r.Us !== undefined && { Us: f64(r.Us) }),
      ...(r.VTs !== undefined && { VTs: f64(r.VTs) }),
      ...(r.valid_mask !== undefined && { validMask: [...r.valid_mask] }),
      ...(r.LBFGS !== undefined && { L: r.LBFGS }),
    })),
    grads: Object.fromEntries(
      Object.entries(c.grads).map(([name, g]) => [
        name,
        {
          loss: g.loss,
          dW: f64(g.dW),
          db: f64(g.db),
          dQd: f64(g.dQd),
          ...(g.u_star !== undefined && { uStar: f64(g.u_star) }),
          ...(g.spectral_radius_J !== undefined && { spectralRadius: g.spectral_radius_J }),
        },
      ]),
    ),
  }));
  return cached;
}

/** Find a run by name in a case (throws if missing, so tests fail loudly). */
export function goldenRun(c: GoldenCase, name: string): GoldenRun {
  const r = c.runs.find((x) => x.name === name);
  if (!r) throw new Error(`golden case ${c.name} has no run ${name}`);
  return r;
}
