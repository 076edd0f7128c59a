// The README's runnable ts blocks (tagged `<!-- tag -->`) and what their output must look like.
// Shared by test/readme.test.ts (against src/) and test/package.test.ts (against the packed dist/).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const README = fileURLToPath(new URL('../../README.md', import.meta.url));

/** The source of the README's ts block tagged `<!-- tag -->`. */
export function readmeBlock(tag: string): string {
  const match = new RegExp(`<!-- ${tag} -->\\s*\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(readFileSync(README, 'utf8'));
  if (!match) throw new Error(`README has no <!-- ${tag} --> ts block`);
  return match[1];
}

/** Checks the quickstart's three lines: each solver by name, reaching the fixed point. */
export function expectQuickstartOutput(lines: string[]): void {
  expect(lines).toHaveLength(3);
  for (const [line, name] of lines.map((l, i) => [l, ['picard', 'anderson', 'broyden'][i]] as const)) {
    const m = /^(\w+): (\d+) evaluations of f, ‖f\(u\) − u‖ = (\S+), u\[0\] = (\S+)$/.exec(line);
    expect(m, line).not.toBeNull();
    expect(m?.[1]).toBe(name);
    expect(Number(m?.[2])).toBeGreaterThan(1);
    expect(Number(m?.[3])).toBeLessThan(1e-4);
    expect(Math.abs(Number(m?.[4]))).toBeLessThan(1);
  }
}

/** Checks the `<!-- layers -->` block's output. */
export function expectLayersOutput(lines: string[]): void {
  expect(lines[0]).toMatch(/^anderson: \d+ evaluations, converged: true$/);
  expect(lines[1]).toBe('gradients: 0.weight, 0.bias, 2.weight, 2.bias, 4.gamma, 4.beta, Qd');
}

/** Checks the `<!-- define-layer -->` block's output. */
export function expectDefineLayerOutput(lines: string[]): void {
  expect(lines[0]).toMatch(/^gradcheck passed\nu .*ok.*\nQd .*ok.*\na .*ok/);
  expect(Number(/^broyden: (\d+) evaluations$/.exec(lines[1] ?? '')?.[1])).toBeGreaterThan(1);
}

/** Checks the `<!-- training -->` block's output: four loss lines, the last under half the first. */
export function expectTrainingOutput(lines: string[]): void {
  const losses = lines.map((l) => /^step (\d+): loss (\S+)$/.exec(l)).filter((m) => m !== null).map((m) => Number(m[2]));
  expect(losses, lines.join('\n')).toHaveLength(4);
  expect(losses[3]).toBeLessThan(0.5 * losses[0]);
}

/** Checks the `<!-- jacobian-penalty -->` block's output: three lines, the penalty falls, ρ < 1 at the end. */
export function expectJacobianPenaltyOutput(lines: string[]): void {
  const rows = lines.map((l) => /^step (\d+): loss (\S+), \|J\|\^2\/n (\S+), rho (\S+)$/.exec(l)).filter((m) => m !== null).map((m) => m.slice(2).map(Number));
  expect(rows, lines.join('\n')).toHaveLength(3);
  const [first, last] = [rows[0], rows[2]];
  expect(last[1]).toBeLessThan(0.7 * first[1]);
  expect(last[2]).toBeGreaterThan(0);
  expect(last[2]).toBeLessThan(1);
}

/** Checks the `<!-- params -->` block's output: the names, the file size and a value read back. */
export function expectParamsOutput(lines: string[]): void {
  const m = /^weight, bias: (\d+) bytes, weight\[1\] = (\S+)$/.exec(lines[0] ?? '');
  expect(m, lines[0]).not.toBeNull();
  expect(Number(m?.[1])).toBeGreaterThan(8 + 4 * (16 * 16 + 16));
  expect(m?.[2]).toBe((Math.sin(1) / 16).toFixed(4));
}
