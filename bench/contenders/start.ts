/** Starts the contenders a run asked for, in Node or in a page alike. */
import type { Contender } from './contender';
import { cpuContender } from './cpu';
import { tfjsContender } from './tfjs';

/**
 * The contenders named (in that order). TF.js needs `navigator.gpu`: in Node call
 * `exposeDawnAsNavigatorGpu()` first.
 */
export async function startContenders(names: readonly ('tfjs' | 'cpu')[], tfjsMatmul?: number): Promise<Contender[]> {
  const contenders: Contender[] = [];
  for (const name of names) {
    contenders.push(name === 'tfjs' ? await tfjsContender({ matmulProgram: tfjsMatmul }) : cpuContender());
  }
  return contenders;
}

/** Name → description, for the results. */
export function describe(contenders: readonly Contender[]): Record<string, string> {
  return Object.fromEntries(contenders.map((c) => [c.name, c.description]));
}
