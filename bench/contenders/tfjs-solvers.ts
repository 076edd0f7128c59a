/**
 * Picard and Anderson written with TensorFlow.js ops, as a TF.js user would write them: every
 * iteration stays on the backend (no readback inside the loop), tensors are freed with tf.tidy and
 * dispose, and the best state is read back once at the end. The rules are the engine's (see
 * cpu.ts): ‖f(u) − u‖ and the best iterate every iteration, eps = 0, u0 = 0.
 * Backend-agnostic: the bench runs it on 'webgpu', the tests on 'cpu'.
 */
import type * as TfCore from '@tensorflow/tfjs-core';
import type { BenchProblem } from '../problem';
import { countedEvaluations, type ContenderCase } from './contender';

type Tf = typeof TfCore;
type Tensor = TfCore.Tensor;
type Tensor2D = TfCore.Tensor2D;
type Scalar = TfCore.Scalar;

/** The block's tensors, uploaded once per problem. */
export interface TfBlock {
  rows: number;
  d: number;
  w: Tensor2D;
  /** Qd + b, [rows, d]: the bias of the fused matmul. */
  qdb: Tensor2D;
  dispose(): void;
}

/** What a TF.js solve returns (read back once, at the end). */
export interface TfSolveResult {
  uStar: Float32Array;
  absResidual: number;
  tnstep: number;
}

/** Uploads the problem. */
export function tfBlock(tf: Tf, problem: BenchProblem): TfBlock {
  const { d, rows } = problem;
  const w = tf.tensor2d(problem.w, [d, d]);
  const qdb = tf.tidy(() => tf.add(tf.tensor2d(problem.Qd, [rows, d]), tf.tensor1d(problem.b)) as Tensor2D);
  return { rows, d, w, qdb, dispose: () => tf.dispose([w, qdb]) };
}

/** f(u) = tanh(u @ w + (Qd + b)): a fused matmul with bias, then tanh (TF.js fuses no tanh). */
function evaluate(tf: Tf, block: TfBlock, u: Tensor2D): Tensor2D {
  return tf.tidy(() => tf.tanh(tf.fused.matMul({ a: u, b: block.w, bias: block.qdb })) as Tensor2D);
}

/** The best iterate and its ‖f(u) − u‖², updated without leaving the backend. */
class BestSoFar {
  constructor(
    private readonly tf: Tf,
    public state: Tensor2D,
    public squared: Scalar,
  ) {}

  /** Keeps `candidate` when its squared residual `squared` is lower (takes ownership of `squared`). */
  offer(candidate: Tensor2D, squared: Scalar): void {
    const { tf } = this;
    const [state, best] = tf.tidy(() => {
      const better = tf.less(squared, this.squared);
      return [tf.where(better, candidate, this.state), tf.minimum(squared, this.squared)];
    });
    tf.dispose([this.state, this.squared, squared]);
    this.state = state as Tensor2D;
    this.squared = best as Scalar;
  }

  /** Reads state and residual back in one transfer, then frees them. */
  async read(rows: number, d: number): Promise<{ uStar: Float32Array; absResidual: number }> {
    const { tf } = this;
    const packed = tf.tidy(() => tf.concat([tf.reshape(this.state, [rows * d]), tf.reshape(this.squared, [1])]));
    const values = (await packed.data()) as Float32Array;
    tf.dispose([packed, this.state, this.squared]);
    return { uStar: values.slice(0, rows * d), absResidual: Math.sqrt(values[rows * d]) };
  }
}

function squaredResidual(tf: Tf, fu: Tensor, u: Tensor): Scalar {
  return tf.tidy(() => tf.sum(tf.squaredDifference(fu, u)));
}

/** Picard u ← f(u) from u0 = 0, maxDepth evaluations (the first also measures the start). */
export async function tfPicard(tf: Tf, block: TfBlock, maxDepth: number): Promise<TfSolveResult> {
  const { rows, d } = block;
  let u = tf.zeros([rows, d]) as Tensor2D;
  let next = evaluate(tf, block, u);
  const best = new BestSoFar(tf, tf.clone(u), squaredResidual(tf, next, u));
  for (let t = 0; t < maxDepth; t++) {
    if (t > 0) next = evaluate(tf, block, u);
    best.offer(next, squaredResidual(tf, next, u));
    u.dispose();
    u = next;
  }
  u.dispose();
  return { ...(await best.read(rows, d)), tnstep: countedEvaluations('picard', maxDepth) };
}

/**
 * Solves A x = rhs for a small symmetric positive definite A ([s, s], on the backend) by
 * Gauss–Jordan elimination in tensor ops (no pivoting: A = G + reg·I is SPD), so α never
 * leaves the backend. `units[k]` is the k-th unit column [s, 1].
 */
function solveSmall(tf: Tf, A: Tensor2D, rhs: Tensor2D, units: readonly Tensor2D[]): Tensor2D {
  return tf.tidy(() => {
    const s = A.shape[0];
    let m = tf.concat([A, rhs], 1); // [s, s + 1]
    for (let k = 0; k < s; k++) {
      const row = tf.slice(m, [k, 0], [1, s + 1]);
      const pivotRow = tf.div(row, tf.slice(row, [0, k], [1, 1]));
      const column = tf.slice(m, [0, k], [s, 1]);
      m = tf.add(tf.sub(m, tf.mul(column, pivotRow)), tf.mul(units[k], pivotRow));
    }
    return tf.slice(m, [0, s], [s, 1]) as Tensor2D;
  });
}

/**
 * Anderson acceleration from u0 = 0 with m + 1 history slots and the engine's rules (see
 * cpu.ts cpuAnderson): one evaluation of f per iteration, reused as the next history entry.
 */
export async function tfAnderson(
  tf: Tf,
  block: TfBlock,
  solve: Pick<ContenderCase, 'maxDepth' | 'windowSize' | 'reg' | 'mixing'>,
): Promise<TfSolveResult> {
  const { rows, d } = block;
  const n = rows * d;
  const slots = solve.windowSize + 1;
  const beta = solve.mixing;
  // Constants: the unit columns, reg·I, and the right side 1 over the valid slots, per length.
  const units = Array.from({ length: slots }, (_, k) => tf.tensor2d(Array.from({ length: slots }, (_, i) => (i === k ? 1 : 0)), [slots, 1]));
  const regI = tf.tidy(() => tf.mul(tf.eye(slots), solve.reg) as Tensor2D);
  const ones = Array.from({ length: slots + 1 }, (_, len) =>
    tf.tensor2d(Array.from({ length: slots }, (_, i) => (i < len ? 1 : 0)), [slots, 1]),
  );
  // The ring: x, f(x) and the residual f(x) − x per slot (empty slots hold zeros).
  const xs: Tensor2D[] = [];
  const fxs: Tensor2D[] = [];
  const rs: Tensor2D[] = [];
  for (let i = 0; i < slots; i++) {
    xs.push(tf.zeros([rows, d]));
    fxs.push(tf.zeros([rows, d]));
    rs.push(tf.zeros([rows, d]));
  }
  /** Slot `slot` takes ownership of x and fx. */
  const write = (slot: number, x: Tensor2D, fx: Tensor2D): void => {
    tf.dispose([xs[slot], fxs[slot], rs[slot]]);
    xs[slot] = x;
    fxs[slot] = fx;
    rs[slot] = tf.sub(fx, x);
  };

  const x0 = tf.zeros([rows, d]) as Tensor2D;
  const u1 = evaluate(tf, block, x0);
  const best = new BestSoFar(tf, tf.clone(u1), squaredResidual(tf, u1, x0));
  write(0, x0, tf.clone(u1));
  let u = u1;
  let fu = evaluate(tf, block, u);
  let ptr = 1;
  let len = 1;
  for (let step = 1; step < solve.maxDepth; step++) {
    write(ptr, u, fu);
    ptr = (ptr + 1) % slots;
    len = Math.min(len + 1, slots);
    const next = tf.tidy(() => {
      const R = tf.reshape(tf.stack(rs), [slots, n]) as Tensor2D;
      const gram = tf.add(tf.matMul(R, R, false, true), regI) as Tensor2D;
      const raw = solveSmall(tf, gram, ones[len], units);
      const alpha = tf.reshape(tf.div(raw, tf.add(tf.sum(raw), 1e-12)), [1, slots]);
      let mixed = tf.mul(tf.matMul(alpha, tf.reshape(tf.stack(fxs), [slots, n])), beta);
      if (beta !== 1) mixed = tf.add(mixed, tf.mul(tf.matMul(alpha, tf.reshape(tf.stack(xs), [slots, n])), 1 - beta));
      return tf.reshape(mixed, [rows, d]) as Tensor2D;
    });
    const fNext = evaluate(tf, block, next);
    best.offer(next, squaredResidual(tf, fNext, next));
    u = next;
    fu = fNext;
  }
  tf.dispose([u, fu, ...xs, ...fxs, ...rs, ...units, regI, ...ones]);
  return { ...(await best.read(rows, d)), tnstep: countedEvaluations('anderson', solve.maxDepth) };
}
