/**
 * The TensorFlow.js contender: TF.js with its WebGPU backend (Dawn in Node once
 * `exposeDawnAsNavigatorGpu()` has run, the browser's own WebGPU in a page), running the Picard
 * and Anderson iterations of tfjs-solvers.ts with TF.js's default kernel choices.
 */
import type { BenchProblem } from '../problem';
import { medianTiming, type Contender, type ContenderCase, type ContenderTiming } from './contender';
import { tfAnderson, tfBlock, tfPicard } from './tfjs-solvers';

/** Options of {@link tfjsContender}. */
export interface TfjsContenderOptions {
  /**
   * TF.js's WEBGPU_MATMUL_PROGRAM_TYPE: unset keeps TF.js's own choice per shape; 0 reduce,
   * 1 split-K, 2 small-output, 3 packed (for looking at what a tuned TF.js could do).
   */
  matmulProgram?: number;
}

/**
 * Loads TF.js and its WebGPU backend and returns the contender. Needs `navigator.gpu` before the
 * backend module loads: the backend registers itself only when it sees one.
 * @throws Error when TF.js cannot start its WebGPU backend.
 */
export async function tfjsContender(options: TfjsContenderOptions = {}): Promise<Contender> {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-webgpu');
  if (!(await tf.setBackend('webgpu'))) throw new Error('TF.js could not start its WebGPU backend');
  await tf.ready();
  if (options.matmulProgram !== undefined) tf.env().set('WEBGPU_MATMUL_PROGRAM_TYPE', options.matmulProgram);
  const name = options.matmulProgram === undefined ? 'tfjs' : `tfjs-matmul${options.matmulProgram}`;
  const matmul = options.matmulProgram === undefined ? 'its default matmul programs' : `WEBGPU_MATMUL_PROGRAM_TYPE = ${options.matmulProgram}`;
  return {
    name,
    description: `TF.js ${tf.version_core}, WebGPU backend, ${matmul}`,
    supports: (solver) => solver === 'picard' || solver === 'anderson',
    async time(problem: BenchProblem, solve: ContenderCase, repeats: number): Promise<ContenderTiming | null> {
      const block = tfBlock(tf, problem);
      try {
        const tensorsBefore = tf.memory().numTensors;
        const run = async (): Promise<number> => {
          const result = solve.solver === 'anderson' ? await tfAnderson(tf, block, solve) : await tfPicard(tf, block, solve.maxDepth);
          return result.tnstep;
        };
        const timing = await medianTiming(run, repeats);
        // A solve that left tensors behind would make later rows slower and the figures unfair.
        const leaked = tf.memory().numTensors - tensorsBefore;
        if (leaked !== 0) throw new Error(`TF.js ${solve.solver} left ${leaked} tensors behind`);
        return timing;
      } finally {
        block.dispose();
      }
    },
    dispose() {
      tf.disposeVariables();
    },
  };
}
