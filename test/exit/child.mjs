// Run by test/exit.test.ts in a plain `node` child: imports the built package by its own name,
// makes one call, and exits the process the moment the call resolves — no destroy(), no await
// of anything else. A call that leaves GPU work of its own in flight crashes dawn.node's
// teardown here (SIGSEGV); the parent asserts exit code 0 and no signal.
//   node test/exit/child.mjs <call>
import { Engine, picard, anderson, broyden, jfb, gdeq, ift, mse, softmaxCrossEntropy, adam, implicitBlock } from 'anchorax';

const call = process.argv[2];
const d = 32;
const batch = 16;
let s = 7;
const random = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
const values = (n, scale) => Float32Array.from({ length: n }, () => random() * scale);

const engine = await Engine.create();
const f = implicitBlock(engine, { weight: values(d * d, 0.5 / Math.sqrt(d)), bias: values(d, 0.5) });
const Qd = engine.tensor(values(batch * d, 1), [batch, d]);
const solvers = { picard, anderson, broyden };
const wrappers = { jfb, gdeq, ift };
const [kind, solverName] = call.split(':');
const solver = solvers[solverName] ?? broyden;
/** ift's adjoint solve with picard too (few kernels to compile); the other wrappers take no such option. */
const adjoint = (name) => (name === 'ift' ? { backwardSolver: picard } : {});
if (solvers[kind]) {
  await solvers[kind](f, Qd, { eps: 1e-5 });
} else if (wrappers[kind]) {
  await wrappers[kind](f, Qd, { eps: 1e-5, solver, ...adjoint(kind) });
} else if (kind === 'backward') {
  // Picard forward (broyden for gdeq, whose backward uses its factors): the backward is under test.
  const wrapper = wrappers[solverName] ?? jfb;
  const result = await wrapper(f, Qd, { eps: 1e-5, solver: solverName === 'gdeq' ? broyden : picard, ...adjoint(solverName) });
  await result.backward(engine.tensor(values(batch * d, 1), [batch, d]));
} else if (kind === 'mse') {
  await mse(Qd);
} else if (kind === 'softmaxCrossEntropy') {
  await softmaxCrossEntropy(Qd, Array.from({ length: batch }, (_, i) => i % d));
} else if (kind === 'step') {
  const optimizer = adam(engine, [f.params.weight, f.params.bias], { lr: 1e-3 });
  await optimizer.step([engine.zeros([d, d]), engine.zeros([d])]);
} else {
  process.stderr.write(`unknown call ${call}\n`);
  process.exit(2);
}
process.exit(0);
