// Run by test/package.test.ts in a plain `node` child process: imports the *built* package by its
// name from a consumer project where the packed tarball is installed (Node picks dist/node.js
// through package.json "exports", exactly as a user's `import` would), solves a small random
// contractive problem with each solver and one with a defineLayer layer (whose WGSL is reflected
// at run time, by the lazily loaded chunk), and prints one JSON line prefixed with `@@result `.
//   node test/dist/smoke.mjs <seed> <d> <batch>
import { Engine, picard, anderson, broyden, defineLayer, Tensor, implicitBlock } from 'anchorax';

const [seed = 7, d = 24, batch = 3] = process.argv.slice(2).map(Number);

/** mulberry32: deterministic, so a failure reproduces. */
function rng(s) {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = rng(seed);
const uniform = (n, scale) => Float32Array.from({ length: n }, () => (2 * random() - 1) * scale);
// iid U(-a, a) entries: spectral norm ≈ 2a√d/√3 ≈ 0.58 for a = 0.5/√d, and tanh is 1-Lipschitz,
// so f is a contraction.
const w = uniform(d * d, 0.5 / Math.sqrt(d));
const b = uniform(d, 0.5);
const qd = uniform(batch * d, 1);

let engine;
let exitCode = 0;
try {
  engine = await Engine.create();
  const f = implicitBlock(engine, { weight: w, bias: b });
  const Qd = engine.tensor(qd, [batch, d]);
  const runs = {};
  for (const [name, solve, options] of [
    ['picard', picard, { eps: 1e-5 }],
    ['anderson', anderson, { eps: 1e-5 }],
    ['broyden', broyden, { eps: 1e-5 }],
  ]) {
    const result = await solve(f, Qd, options);
    runs[name] = {
      tnstep: result.tnstep,
      stats: result.stats,
      uStarIsTensor: result.uStar instanceof Tensor,
      shape: [...result.uStar.shape],
      uStar: Array.from(await result.uStar.read()),
    };
    result.dispose();
  }
  // f(u) = tanh(a ⊙ u + Qd), a user WGSL layer: |a| < 1 makes it a contraction.
  const a = uniform(d, 0.9);
  const custom = await defineLayer(engine, {
    featureSize: d,
    params: { a },
    forward: 'fn forward(row: u32, i: u32) -> f32 { return tanh(a[i] * state(row, i) + injected(row, i)); }',
    adjoint: `
fn slope(row: u32, i: u32) -> f32 { let y = forward(row, i); return grad_output(row, i) * (1.0 - y * y); }
fn grad_input(row: u32, i: u32) -> f32 { return slope(row, i) * a[i]; }
fn grad_qd(row: u32, i: u32) -> f32 { return slope(row, i); }
fn grad_a(k: u32) -> f32 { var s = 0.0; for (var r = 0u; r < rows(); r++) { s += slope(r, k) * state(r, k); } return s; }`,
  });
  const result = await picard(custom, Qd, { eps: 1e-5 });
  const customRun = { converged: result.stats.converged, uStar: Array.from(await result.uStar.read()) };
  result.dispose();
  const out = {
    resolved: import.meta.resolve('anchorax'),
    seed, d, batch, w: Array.from(w), b: Array.from(b), qd: Array.from(qd), runs, readbackCount: engine.readbackCount,
    custom: { a: Array.from(a), ...customRun } };
  process.stdout.write(`@@result ${JSON.stringify(out)}\n`);
} catch (err) {
  process.stderr.write(`smoke.mjs failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  exitCode = 1;
} finally {
  // Release the device and exit explicitly: some dawn.node builds keep the event loop alive while
  // a device exists (webgpu 0.6.2 here exits on its own, but the test must not depend on that).
  engine?.destroy();
  process.exit(exitCode);
}
