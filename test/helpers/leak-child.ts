// Child process of test/leaks.test.ts, run as `node --expose-gc vite-node this-file <case>`:
// makes tensors and results, drops them (modes leak, trace, off, destroyed) or disposes them (dispose),
// forces garbage collection and prints the console.warn calls it saw (JSON on the last stdout line).
import { Engine, mse } from '../../src/node';

const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');
const warnings: string[] = [];
console.warn = (...args: unknown[]) => warnings.push(args.map(String).join(' '));

const mode = process.argv[2] ?? 'leak';

/** Makes a loss result (two tensors) and a plain tensor; returns nothing, so both become garbage. */
async function leakResult(engine: Engine): Promise<void> {
  const prediction = engine.tensor([1, 2, 3, 4], [2, 2]);
  const zeros = engine.zeros([2, 2]);
  const loss = await mse(prediction, zeros);
  await loss.value();
  if (mode === 'dispose') {
    loss.dispose();
    prediction.dispose();
    zeros.dispose();
  }
}

const engine = await Engine.create(mode === 'off' ? { leakWarnings: false } : mode === 'trace' ? { leakWarnings: 'trace' } : {});
const target = engine.zeros([2, 2]);
await engine.scope(async () => {
  // Scoped work is disposed by the scope: never a leak.
  await mse(engine.tensor([1, 2, 3, 4], [2, 2]), target);
});
for (let i = 0; i < 3; i++) await leakResult(engine);
// After destroy() the memory is gone with the engine: collected tensors are no leaks then.
if (mode === 'destroyed') engine.destroy();
for (let round = 0; round < 10; round++) {
  gc();
  await new Promise((resolve) => setTimeout(resolve, 20));
}
if (mode !== 'destroyed') {
  target.dispose();
  engine.destroy();
}
console.log(JSON.stringify({ warnings, leakCount: engine.leakCount }));
