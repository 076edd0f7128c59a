/**
 * `npm run bench:backprop [-- --out DIR]`: JFB, GDEQ and IFT on the golden contractive case —
 * gradient error against the original's exact implicit gradient (ift_exact), evaluations of f
 * (forward + backward solve) and µs per gradient — and the time of one train step
 * (gdeq + broyden forward, backward, Adam) at d = 256, batch 64, 30 iterations.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Engine, adam, implicitBlock, broyden, gdeq, ift, jfb, picard, mse, type ImplicitOptions, type ImplicitResult, type Tensor } from '../src/node';
import { adapterName, argument, runMain } from './cli';

interface GoldenCase {
  name: string;
  d: number;
  batch: number;
  W: number[];
  b: number[];
  Qd: number[];
  T: number[];
  grads: Record<string, { dW: number[]; db: number[]; dQd: number[] }>;
}


function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor(sorted.length / 2)];
}

async function main(): Promise<void> {
  const goldenPath = argument('golden') ?? fileURLToPath(new URL('../test/fixtures/golden.json', import.meta.url));
  const golden = (JSON.parse(readFileSync(goldenPath, 'utf8')) as { cases: GoldenCase[] }).cases.find((c) => c.name === 'contractive_d32_b4');
  if (!golden) throw new Error('golden case missing');
  const repeats = Number(argument('repeats') ?? 5);
  const engine = await Engine.create();
  const adapter = adapterName(engine);
  const lines: string[] = [`adapter: ${adapter}`, '', '| method | solver | grad error vs ift_exact (w) | f-evals (fwd + bwd) | µs per gradient |', '|---|---|---|---|---|'];
  const f = implicitBlock(engine, { weight: Float32Array.from(golden.W), bias: Float32Array.from(golden.b) });
  const shape = [golden.batch, golden.d];
  const Qd = engine.tensor(Float32Array.from(golden.Qd), shape);
  const T = engine.tensor(Float32Array.from(golden.T), shape);
  const exact = golden.grads.ift_exact;
  const methods: [string, (o: ImplicitOptions) => Promise<ImplicitResult & { backwardStats?: { nstep: number } }>, ImplicitOptions][] = [
    ['jfb', (o) => jfb(f, Qd, o), { solver: broyden, eps: 1e-6 }],
    ['jfb', (o) => jfb(f, Qd, o), { solver: picard, eps: 1e-6, maxDepth: 200 }],
    ['gdeq', (o) => gdeq(f, Qd, o), { solver: broyden, eps: 1e-6 }],
    ['gdeq', (o) => gdeq(f, Qd, o), { solver: broyden, eps: 1e-6, lbfgsThres: null }],
    ['ift', (o) => ift(f, Qd, o), { solver: broyden, eps: 1e-6 }],
  ];
  for (const [name, run, options] of methods) {
    const times: number[] = [];
    let error = 0;
    let evals = '';
    for (let k = 0; k <= repeats; k++) {
      const start = performance.now();
      const out = await run(options);
      const grads = await out.backward(T);
      const w = await grads.weight.read(); // waits for the backward to finish
      if (k > 0) times.push(performance.now() - start);
      error = relError(w, exact.dW);
      const backwardEvals = out.backwardStats ? ` + ${out.backwardStats.nstep}` : '';
      evals = `${out.tnstep}${backwardEvals}`;
      for (const t of Object.values(grads) as Tensor[]) t.dispose();
      out.dispose();
    }
    const solverName = options.solver === picard ? 'picard' : options.lbfgsThres === null ? 'broyden (L = ∞)' : 'broyden';
    lines.push(`| ${name} | ${solverName} | ${error.toExponential(2)} | ${evals} | ${(median(times) * 1000).toFixed(0)} |`);
  }

  // One train step at d = 256, batch 64: gdeq + broyden (30 iterations), backward, Adam.
  const d = 256;
  const batch = 64;
  const values = (n: number, scale: number, seed: number) => {
    let s = seed;
    return Float32Array.from({ length: n }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return ((s / 4294967296) * 2 - 1) * scale;
    });
  };
  const w = engine.tensor(values(d * d, 0.5 / Math.sqrt(d), 1), [d, d]);
  const b = engine.tensor(values(d, 0.1, 2), [d]);
  const block = implicitBlock(engine, { weight: w, bias: b });
  const input = engine.tensor(values(batch * d, 1, 3), [batch, d]);
  const target = engine.tensor(values(batch * d, 0.5, 4), [batch, d]);
  const opt = adam(engine, [w, b], { lr: 1e-4 });
  const stepTimes: number[] = [];
  for (let k = 0; k <= repeats; k++) {
    const start = performance.now();
    const out = await gdeq(block, input, { solver: broyden, eps: 0, maxDepth: 30, checkEvery: 30 });
    const loss = await mse(out.uStar, target);
    const grads = await out.backward(loss.grad);
    await opt.step([grads.weight, grads.bias]);
    await engine.device.queue.onSubmittedWorkDone();
    if (k > 0) stepTimes.push(performance.now() - start);
    for (const t of [loss.grad, loss.total, grads.weight, grads.bias, grads.Qd]) t.dispose();
    out.dispose();
  }
  lines.push('', `train step (gdeq + broyden, 30 iterations, backward, Adam) at d = ${d}, batch ${batch}: ${median(stepTimes).toFixed(2)} ms (median of ${repeats})`);
  const text = lines.join('\n');
  console.log(text);
  const out = argument('out');
  if (out) writeFileSync(`${out}/backprop.md`, `${text}\n`);
  engine.destroy();
}

runMain(main);
