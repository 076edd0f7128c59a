/**
 * The dense product with a fused epilogue, `y = epilogue(x·weight + bias)`, and its adjoints: the
 * one place the library computes a dense layer (shaders/lib/gemm_*.wgsl through shaders/dense*.wgsl).
 * `linear` is the empty epilogue; a `sequential` layer fuses the elementwise stages that follow a
 * linear stage into its epilogue (add(Qd), tanh/relu/gelu, dropout), and the tanh block is the
 * preset `linear → add(Qd) → tanh (→ dropout)`.
 *
 * The kernels are data (KERNEL_SPECS below: shader, entry point, override constants, geometry);
 * which product runs is chosen per problem here (few rows, split over k, register-tiled).
 */
import type { Engine } from '../engine';
import { LimitError } from '../errors';
import type { BufferRegion } from '../gpu/kernel';
import { KernelSet, type KernelCall, type KernelSpec } from '../gpu/kernel-set';
import { wgslConstant } from '../gpu/shaders';
import type { QdGradient } from './stage';

/** An elementwise op fused after the product (lib/epilogue.wgsl), in stage order. */
export type EpilogueOp = 'add-qd' | 'tanh' | 'relu' | 'gelu' | 'dropout';

/** A u32 constant of lib/epilogue.wgsl or a piece it includes, reflected (never copied). */
const epilogueConstant = (name: string): number => wgslConstant('dense', name, 'u32');

/** @internal The op codes of lib/activations.wgsl and lib/epilogue.wgsl. */
export const EPILOGUE_OP_CODES: Readonly<Record<EpilogueOp, number>> = {
  tanh: epilogueConstant('OP_TANH'),
  relu: epilogueConstant('OP_RELU'),
  gelu: epilogueConstant('OP_GELU'),
  'add-qd': epilogueConstant('OP_ADD_QD'),
  dropout: epilogueConstant('OP_DROPOUT'),
};
const OP_NONE = epilogueConstant('OP_NONE');
const EPI_MAX = epilogueConstant('EPI_MAX');

/** @internal Most ops a fused chain holds (EPI_MAX of lib/epilogue.wgsl). */
export const EPILOGUE_MAX_OPS: number = EPI_MAX;

/** @internal A chain of ops and the dropout members of the kernels' params (zeros without dropout). */
export interface Epilogue {
  readonly ops: readonly EpilogueOp[];
  /** drop_threshold, drop_scale, drop_per_solve, drop_salt (lib/dropout.wgsl). */
  readonly dropout: Readonly<Record<string, number>>;
}

/** @internal The dropout members of a chain without dropout. */
export const NO_DROPOUT: Readonly<Record<string, number>> = Object.freeze({ drop_threshold: 0, drop_scale: 1, drop_per_solve: 0, drop_salt: 0 });

/** @internal The empty chain: y = x·weight + bias. */
export const NO_EPILOGUE: Epilogue = Object.freeze({ ops: Object.freeze([]), dropout: NO_DROPOUT });

/** See {@link TanhBlockParams.forwardKernel}. */
export type ForwardKernelChoice = 'auto' | 'tiled' | 'split-k' | 'matmul';

/**
 * The tile sizes of the library's `override` constants, chosen per device: GEMM_COLS columns
 * (and threads) per few-row workgroup, GEMM_SIDE² threads per register-tiled workgroup (a
 * (4·GEMM_SIDE)² tile), GEMM_STEP values of k per staged slice.
 */
export interface GemmTiles {
  cols: number;
  side: number;
  step: number;
}

/** @internal The tiles for a device: the library's sizes, smaller where its limits ask. */
export function gemmTiles(limits: GPUSupportedLimits): GemmTiles {
  const invocations = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX * limits.maxComputeWorkgroupSizeY);
  const cols = Math.min(64, limits.maxComputeWorkgroupSizeX);
  const side = invocations >= 256 && limits.maxComputeWorkgroupSizeX >= 16 && limits.maxComputeWorkgroupSizeY >= 16 ? 16 : 8;
  const step = 16;
  // Two staged slices of step × 4·side floats must fit workgroup memory.
  return 2 * step * 4 * side * 4 <= limits.maxComputeWorkgroupStorageSize ? { cols, side, step } : { cols, side: 8, step: 8 };
}

/**
 * @internal A register tiling of lib/gemm_tiled.wgsl: GEMM_SIDE² threads, each computing a
 * `per` × `per` block, so a tile of `edge` = per·side rows and columns of C; `step` values of k
 * staged per slice.
 */
export interface TileShape {
  side: number;
  per: 4 | 8;
  step: number;
  edge: number;
}

/**
 * @internal The tilings a device offers, largest tile first: 8 × 8 per thread on the device's
 * GEMM_SIDE (128 × 128 tiles with the library's sizes; GEMM_STEP halved to stay within workgroup
 * memory), 4 × 4 on it (64 × 64), and 4 × 4 on 8 × 8 threads (32 × 32) when the side is larger.
 */
export function tileShapes(tiles: GemmTiles, limits: GPUSupportedLimits): TileShape[] {
  const shapes: TileShape[] = [];
  const add = (side: number, per: 4 | 8, step: number): void => {
    const fits = 2 * step * per * side * 4 <= limits.maxComputeWorkgroupStorageSize;
    if (fits && !shapes.some((s) => s.edge === per * side)) shapes.push({ side, per, step, edge: per * side });
  };
  add(tiles.side, 8, Math.max(4, tiles.step / 2));
  add(tiles.side, 4, tiles.step);
  add(8, 4, tiles.step);
  return shapes.sort((a, b) => b.edge - a.edge);
}

/**
 * @internal Workgroups a register-tiled product aims at: about twice the streaming multiprocessors of the
 * largest GPUs (132 on an H100 or H200), so that every one has work and a second wave hides the
 * tail. WebGPU does not report the count; a fixed target serves every GPU (smaller ones get
 * more waves).
 */
export const TILED_TARGET_GROUPS = 256;

/**
 * @internal The tiling of a C [m, n] product: the largest tile that still gives
 * TILED_TARGET_GROUPS workgroups, else the smallest (which gives the most).
 */
export function chooseTile(shapes: readonly TileShape[], m: number, n: number): TileShape {
  const groups = (s: TileShape) => Math.ceil(m / s.edge) * Math.ceil(n / s.edge);
  const shape = shapes.find((s) => groups(s) >= TILED_TARGET_GROUPS) ?? shapes.at(-1);
  if (!shape) throw new Error('dense: the device offers no tiling');
  return shape;
}

/** One dispatch's sizes: C [m, n] = A [m, k] · B [k, n]; `splits` slices of k (split-k). */
interface Problem {
  m: number;
  n: number;
  k: number;
  splits: number;
  tiles: GemmTiles;
  /** Few-row products: B read as vec4 (4 columns per thread). */
  vector: boolean;
  /** Register-tiled products: the tiling. */
  tile: TileShape;
}

/** Rows per few-row workgroup (lib/gemm_rows.wgsl accumulates a vec4). */
const ROWS = 4;

const rowsGroups = (p: Problem) => [Math.ceil(p.n / ((p.vector ? 4 : 1) * p.tiles.cols)), Math.ceil(p.m / ROWS)] as const;
/**
 * The one-row body (lib/gemm_row.wgsl, a CPU adapter at batch 1): threads per workgroup, each 16
 * columns, so a workgroup covers 256 columns of a row (docs/swiftshader-costs.md).
 */
const ROW_THREADS = 16;
const rowGroups = (p: Problem) => [Math.ceil(p.n / (16 * ROW_THREADS)), p.m] as const;
const tiledGroups = (p: Problem) => [Math.ceil(p.n / p.tile.edge), Math.ceil(p.m / p.tile.edge)] as const;

/** @internal The override constants of a chain (lib/epilogue.wgsl's EPI_OP*). */
export function chainConstants(epilogue: Epilogue): Record<string, number> {
  const constants: Record<string, number> = {};
  for (let i = 0; i < EPI_MAX; i++) {
    const op = epilogue.ops[i];
    constants[`EPI_OP${i}`] = op === undefined ? OP_NONE : EPILOGUE_OP_CODES[op];
  }
  return constants;
}

/**
 * @internal The forward product of one problem as one kernel of the library, for a kernel that
 * includes the library and wraps the product in its own prologue and epilogue (the fused solver
 * steps): which body, its override constants, workgroups, and threads per workgroup.
 */
export interface FusedProduct {
  /**
   * 'rows4' / 'split4': B read as vec4; 'row': one row per workgroup, vec4 (lib/gemm_row.wgsl);
   * 'split' / 'split4': split-k (lib/gemm_split.wgsl), `split`
   * gives its slices; 'slices': k split inside each workgroup (lib/gemm_slices.wgsl, vec4 loads per
   * its GEMM_VEC4 constant).
   */
  body: 'rows' | 'rows4' | 'row' | 'tiled' | 'split' | 'split4' | 'slices';
  constants: Readonly<Record<string, number>>;
  /** Workgroups (x, y, z); z is the slices of k of a split-k product, else 1. */
  groups: readonly [number, number, number];
  threads: number;
  /** Split-k: slices of k, and k per slice (the last may be shorter); null otherwise. */
  split: { splits: number; chunk: number } | null;
  /**
   * For a split-k product, the same product with every output complete in the workgroup that owns
   * it (body 'slices'), for a step whose epilogue reduces over finished outputs; null when this
   * product already is so.
   */
  whole: FusedProduct | null;
}

/** The register-tiled kernels, each compiled once per tiling (named `<base>@<edge>`). */
const TILED_BASES = ['forwardTiled', 'deltaTiled', 'weightTiled', 'inputTiled'] as const;
type TiledBase = (typeof TILED_BASES)[number];
type KernelName = 'forwardRows' | 'forwardRows4' | 'forwardRow' | 'forwardSplit' | 'forwardSplit4' | 'forwardCombine' | 'deltaRows' | 'weightRows' | 'inputRows' | `${TiledBase}@${number}`;

/** Every kernel of the dense product, as data, for one chain, the device's tiles and tilings. */
function kernelSpecs(epilogue: Epilogue, tiles: GemmTiles, shapes: readonly TileShape[]): Record<KernelName, KernelSpec<Problem>> {
  const rows = { GEMM_COLS: tiles.cols };
  const chain = chainConstants(epilogue);
  const specs: Partial<Record<KernelName, KernelSpec<Problem>>> = {
    forwardRows: { shader: 'dense', entry: 'gemm_rows_main', constants: { ...chain, ...rows }, groups: rowsGroups },
    forwardRows4: { shader: 'dense', entry: 'gemm_rows4_main', constants: { ...chain, ...rows }, groups: rowsGroups },
    forwardRow: { shader: 'dense', entry: 'gemm_row_main', constants: { ...chain, GEMM_ROW_THREADS: ROW_THREADS }, groups: rowGroups },
    forwardSplit: { shader: 'dense', entry: 'gemm_split_main', constants: { ...chain, ...rows }, groups: (p) => [...rowsGroups(p), p.splits] },
    forwardSplit4: { shader: 'dense', entry: 'gemm_split4_main', constants: { ...chain, ...rows }, groups: (p) => [...rowsGroups(p), p.splits] },
    forwardCombine: { shader: 'dense', entry: 'gemm_combine_main', constants: chain, groups: (p) => [Math.ceil((p.m * p.n) / 256)] },
    deltaRows: { shader: 'denseDelta', entry: 'gemm_rows_main', constants: { ...chain, ...rows }, groups: rowsGroups },
    weightRows: { shader: 'denseWeightGrad', entry: 'gemm_rows_main', constants: rows, groups: rowsGroups },
    inputRows: { shader: 'denseInputGrad', entry: 'gemm_rows_main', constants: rows, groups: rowsGroups },
  };
  for (const shape of shapes) {
    const tiled = { GEMM_SIDE: shape.side, GEMM_STEP: shape.step, GEMM_PER: shape.per };
    const spec = (shader: KernelSpec<Problem>['shader'], constants: Record<string, number>): KernelSpec<Problem> => ({
      shader, entry: 'gemm_tiled_main', constants: { ...constants, ...tiled }, groups: tiledGroups,
    });
    specs[`forwardTiled@${shape.edge}`] = spec('dense', chain);
    specs[`deltaTiled@${shape.edge}`] = spec('denseDelta', chain);
    specs[`weightTiled@${shape.edge}`] = spec('denseWeightGrad', { GEMM_A_K_CONTIGUOUS: 0 });
    specs[`inputTiled@${shape.edge}`] = spec('denseInputGrad', { GEMM_B_N_CONTIGUOUS: 0 });
  }
  return specs as Record<KernelName, KernelSpec<Problem>>;
}

/** @internal Which kernels run for a problem: the forward's way, and the adjoint's product kernels. */
export interface Plan {
  /** 'row': one row per workgroup (lib/gemm_row.wgsl; a CPU adapter at one row, vec4). */
  forward: 'rows' | 'row' | 'split' | 'tiled';
  splits: number;
  /** The few-row forward reads the weight as vec4 (n a multiple of 4; on a GPU only with enough workgroups). */
  vector: boolean;
  adjointTiled: boolean;
  /** The tiling of each register-tiled product: the forward (and δ), ∂weight, ∂x. */
  tiles: { forward: TileShape; weight: TileShape; input: TileShape };
}

/** @internal What tests may impose on DenseKernels' choices (never the library itself). */
export interface DenseOverrides {
  /** Plan as on this kind of adapter (default: the engine's). */
  adapter?: 'gpu' | 'cpu';
  /** Use the tiling of this edge for every register-tiled product (one of tileShapes'). */
  tileEdge?: number;
  /** false: never the vec4 loads (the scalar few-row kernels, whatever n). */
  vector?: false;
}

/** From this many rows 'auto' uses the register-tiled product on a GPU. */
const TILED_FROM_ROWS = 32;
/** @internal Split-k is not used once the few-row product has this many workgroups. */
export const SPLIT_BELOW_GROUPS = 128;
/**
 * @internal Split-k aims at about this many workgroups in its first pass: a GEMV streams the weight once,
 * and a GPU reaches its bandwidth only with enough bytes in flight (8 loads per thread of 64
 * threads per workgroup, on every multiprocessor).
 */
export const SPLIT_TARGET_GROUPS = 512;
/** @internal Smallest slice of k per workgroup. */
export const MIN_CHUNK = 32;

/**
 * @internal The slices body (lib/gemm_slices.wgsl): slices of k and column quads per workgroup, as
 * many as its scratch holds (a block of A: GEMM_SLICE_BLOCK values per slice; then each thread's
 * 4 × 4 partial sums): 32 × 2 = 64 threads (the solvers' reduction size), 8 columns per workgroup
 * (128 workgroups per 4 rows at n = 1024), two threads' vec4 loads side by side (32 contiguous
 * bytes of each row of B).
 */
const SLICE_SCRATCH = wgslConstant('gemmSlices', 'GEMM_SLICE_SCRATCH', 'u32');
const SLICE_COUNT = SLICE_SCRATCH / wgslConstant('gemmSlices', 'GEMM_SLICE_BLOCK', 'u32');
const SLICE_QUADS = SLICE_SCRATCH / (4 * SLICE_COUNT);

/** Per-batch scratch: δ (for non-empty chains) and split-k's partial sums. */
interface Scratch {
  delta?: GPUBuffer;
  partial?: GPUBuffer;
}

/** @internal Operands of one product: x [rows, k], weight [k, n], bias [n], Qd [rows, n] (for add-qd). */
export interface DenseOperands {
  x: BufferRegion;
  weight: GPUBuffer;
  bias: GPUBuffer;
  qd?: BufferRegion;
}

/** Forwards DenseKernels re-encodes without lookups: a solver's few buffer sets, an app's few calls. */
const RECENT_FORWARDS = 8;

/** A forward encoded before: its operands and output (compared by identity) and its dispatches. */
interface RecentForward {
  readonly gate: GPUBuffer;
  readonly x: BufferRegion;
  readonly weight: GPUBuffer;
  readonly bias: GPUBuffer;
  readonly qd: BufferRegion | undefined;
  readonly y: BufferRegion;
  readonly rows: number;
  readonly calls: readonly KernelCall[];
}

/** @internal Outputs of the adjoint, each optional. */
export interface DenseGradients {
  /** ȳ, the cotangent of y. */
  gradOutput: BufferRegion;
  /** ∂x = δ·weightᵀ (+ gradInputAdd). */
  gradInput?: BufferRegion;
  gradInputAdd?: BufferRegion;
  gradQd?: QdGradient;
  gradWeight?: BufferRegion;
  gradBias?: BufferRegion;
}

/**
 * @internal The kernels of `y = epilogue(x·weight + bias)` for k input and n output features, and
 * how they are chosen and encoded. `argument` names the rows in a LimitError (`'Qd'`, `'rows'`).
 */
export class DenseKernels {
  private readonly set: KernelSet<Problem, KernelName, Scratch>;
  /** The device's tile sizes (override constants). */
  readonly tiles: GemmTiles;
  /** The register tilings this instance may use, largest first (a CPU adapter: one). */
  readonly tileShapes: readonly TileShape[];
  /** The adjoint's frozen uniform values by configuration (see frozenUniforms). */
  private readonly adjointUniforms = new Map<string, Readonly<Record<string, number>>>();
  /** The last few forwards encoded (see encodeForward). */
  private readonly recentForwards: RecentForward[] = [];
  /** Per rows: what encodeForward computes once (see forwardEncoding). */
  private readonly forwardEncodings = new Map<number, { plan: Plan; problem: Problem; uniforms: Readonly<Record<string, number>> }>();
  /** The epilogue chain's override constants. */
  readonly constants: Readonly<Record<string, number>>;
  /** A never-written target for writable bindings a dispatch does not use (WebGPU forbids aliasing them). */
  private sink?: GPUBuffer;

  constructor(
    private readonly engine: Engine,
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly epilogue: Epilogue,
    readonly choice: ForwardKernelChoice,
    private readonly argument: string,
    what: string,
    /** Whether split-k may run (it needs per-rows scratch; `linear` alone encodes any rows after one prepare). */
    private readonly allowSplit = true,
    private readonly overrides: DenseOverrides = {},
  ) {
    this.tiles = gemmTiles(engine.device.limits);
    const shapes = tileShapes(this.tiles, engine.device.limits);
    const forced = shapes.find((shape) => shape.edge === overrides.tileEdge);
    if (overrides.tileEdge !== undefined && !forced) throw new Error(`dense: no tiling of edge ${overrides.tileEdge} on this device`);
    // A CPU adapter keeps the one tiling it always had (4 × 4 per thread on the device's side).
    const cpuShape = shapes.filter((shape) => shape.per === 4 && shape.side === this.tiles.side);
    this.tileShapes = forced ? [forced] : this.cpu ? cpuShape : shapes;
    const specs = kernelSpecs(epilogue, this.tiles, this.tileShapes);
    this.constants = Object.freeze(chainConstants(epilogue));
    this.set = new KernelSet(engine, what, this.neededSpecs(specs), {
      allocate: (rows) => this.allocateScratch(rows),
      free: (scratch) => {
        if (scratch.delta) engine.releaseBuffer(scratch.delta);
        if (scratch.partial) engine.releaseBuffer(scratch.partial);
      },
    }, 'f');
  }

  /** Whether plans are made for a CPU implementation of WebGPU (see DenseOverrides.adapter). */
  private get cpu(): boolean {
    return this.overrides.adapter === undefined ? this.engine.cpuAdapter : this.overrides.adapter === 'cpu';
  }

  /** Whether the few-row kernels may read the weight as vec4 (n a multiple of 4). */
  private get vectorOk(): boolean {
    return this.outFeatures % 4 === 0 && this.overrides.vector !== false;
  }

  /** The specs this instance may dispatch (a CPU adapter never takes the GPU-only paths). */
  private neededSpecs(specs: Record<KernelName, KernelSpec<Problem>>): Partial<Record<KernelName, KernelSpec<Problem>>> {
    const needed: Partial<Record<KernelName, KernelSpec<Problem>>> = {};
    const take = (...names: KernelName[]) => {
      for (const name of names) needed[name] = specs[name];
    };
    const tiled = (base: TiledBase) => take(...this.tileShapes.map((shape): KernelName => `${base}@${shape.edge}`));
    const gpu = !this.cpu;
    const choice = this.choice;
    const vector = this.vectorOk;
    take('weightRows', 'inputRows', 'forwardRows');
    if (vector) take('forwardRows4');
    if (vector && !gpu) take('forwardRow');
    if (this.allowSplit && (choice === 'split-k' || (choice === 'auto' && gpu))) take(vector ? 'forwardSplit4' : 'forwardSplit', 'forwardCombine');
    if (choice === 'matmul' || gpu) {
      tiled('forwardTiled');
      tiled('weightTiled');
      tiled('inputTiled');
    }
    if (this.epilogue.ops.length > 0) {
      take('deltaRows');
      if (choice === 'matmul' || gpu) tiled('deltaTiled');
    }
    return needed;
  }

  private allocateScratch(rows: number): Scratch {
    const n = rows * this.outFeatures;
    const scratch: Scratch = {};
    if (this.epilogue.ops.length > 0) scratch.delta = this.engine.allocate(n * 4, this.argument);
    const { splits } = this.plan(rows);
    if (splits > 1) scratch.partial = this.engine.allocate(splits * n * 4, this.argument);
    return scratch;
  }

  /**
   * The plan for `rows` rows (see ForwardKernelChoice). On a GPU the few-row forward reads the
   * weight as vec4 when n is a multiple of 4 and splits k until it has about
   * SPLIT_TARGET_GROUPS workgroups (without split-k, vec4 only where it still has
   * SPLIT_BELOW_GROUPS); each register-tiled product takes its tiling by chooseTile.
   * A CPU adapter takes the few-row kernels without split-k, with vec4 loads wherever n is a
   * multiple of 4 (its cost is per load, whatever the workgroup count: docs/swiftshader-costs.md),
   * and at one row the one-row body (ROW_THREADS).
   */
  plan(rows: number): Plan {
    const cpu = this.cpu;
    const { inFeatures: k, outFeatures: n } = this;
    const tileOf = (m: number, cols: number) => chooseTile(this.tileShapes, m, cols);
    const tiles = { forward: tileOf(rows, n), weight: tileOf(k + 1, n), input: tileOf(rows, k) };
    const choice = this.choice === 'auto' && cpu ? 'tiled' : this.choice;
    const adjointTiled = choice === 'matmul' || (!cpu && (choice !== 'tiled' || rows >= TILED_FROM_ROWS));
    const vectorOk = this.vectorOk;
    const base = { splits: 1, vector: vectorOk, adjointTiled, tiles };
    if (choice === 'matmul' || (choice === 'auto' && rows >= TILED_FROM_ROWS)) return { ...base, forward: 'tiled' };
    const groupsOf = (vector: boolean) => Math.ceil(n / ((vector ? 4 : 1) * this.tiles.cols)) * Math.ceil(rows / ROWS);
    // Without split-k, vec4 loads (4 times fewer workgroups) on a GPU only where that leaves enough
    // of them; a CPU adapter always takes them (docs/swiftshader-costs.md: its cost is per load).
    const rowsPlan: Plan = { ...base, forward: cpu && vectorOk && rows === 1 ? 'row' : 'rows', vector: vectorOk && (cpu || groupsOf(true) >= SPLIT_BELOW_GROUPS) };
    if (choice === 'tiled' || !this.allowSplit) return rowsPlan;
    const groups = groupsOf(vectorOk);
    const most = Math.max(1, Math.floor(k / MIN_CHUNK));
    if (choice === 'auto' && (groups >= SPLIT_BELOW_GROUPS || most < 2)) return rowsPlan;
    // Equal chunks: the count is ceil(k / chunk), which may be below the wished-for number.
    const wished = Math.min(most, Math.max(2, Math.ceil(SPLIT_TARGET_GROUPS / groups)));
    const splits = Math.ceil(k / Math.ceil(k / wished));
    return splits > 1 ? { ...base, forward: 'split', splits } : rowsPlan;
  }

  /** @internal Workgroups of the forward's (first) dispatch for `rows` rows: what the plan gives the GPU. */
  forwardGroups(rows: number): number {
    const { problem, plan } = this.forwardEncoding(rows);
    const name = this.forwardKernel(plan);
    const [x, y = 1, z = 1] = this.set.spec(name).groups(problem);
    return x * y * z;
  }

  /** The forward's (first) kernel for a plan. */
  private forwardKernel(plan: Plan): KernelName {
    if (plan.forward === 'tiled') return `forwardTiled@${plan.tiles.forward.edge}`;
    if (plan.forward === 'split') return plan.vector ? 'forwardSplit4' : 'forwardSplit';
    if (plan.forward === 'row') return 'forwardRow';
    return plan.vector ? 'forwardRows4' : 'forwardRows';
  }

  /**
   * The forward for `rows` rows as one product kernel of the library: its body, as the layer's own
   * forward would run it (split-k: the first pass, with the vec4 body where the plan reads the
   * weight as vec4; a fused step folds the combine into its next dispatch).
   */
  fusedProduct(rows: number): FusedProduct {
    const { plan, problem } = this.forwardEncoding(rows);
    const n = this.outFeatures;
    const { cols } = this.tiles;
    if (plan.forward === 'tiled') {
      const tile = plan.tiles.forward;
      return {
        body: 'tiled', constants: { GEMM_SIDE: tile.side, GEMM_STEP: tile.step, GEMM_PER: tile.per },
        groups: [Math.ceil(n / tile.edge), Math.ceil(rows / tile.edge), 1], threads: tile.side * tile.side, split: null, whole: null,
      };
    }
    if (plan.forward === 'split') {
      const [x, y, z] = this.set.spec(this.forwardKernel(plan)).groups(problem);
      return {
        body: plan.vector ? 'split4' : 'split', constants: { GEMM_COLS: cols }, groups: [x, y ?? 1, z ?? 1], threads: cols,
        split: { splits: plan.splits, chunk: Math.ceil(this.inFeatures / plan.splits) },
        whole: {
          body: 'slices', constants: { GEMM_QUADS: SLICE_QUADS, GEMM_SLICES: SLICE_COUNT, GEMM_VEC4: plan.vector ? 1 : 0 },
          groups: [Math.ceil(n / (4 * SLICE_QUADS)), Math.ceil(rows / ROWS), 1], threads: SLICE_QUADS * SLICE_COUNT, split: null, whole: null,
        },
      };
    }
    if (plan.forward === 'row') {
      return {
        body: 'row', constants: { GEMM_ROW_THREADS: ROW_THREADS }, groups: [...rowGroups(problem), 1], threads: ROW_THREADS, split: null, whole: null,
      };
    }
    // The body the layer's own forward takes: vec4 loads of the weight where its plan has them.
    const perGroup = (plan.vector ? 4 : 1) * cols;
    return {
      body: plan.vector ? 'rows4' : 'rows', constants: { GEMM_COLS: cols },
      groups: [Math.ceil(n / perGroup), Math.ceil(rows / ROWS), 1], threads: cols, split: null, whole: null,
    };
  }

  /** Scratch is per rows only for chains (δ) and split-k; otherwise one prepare serves any rows. */
  private scratchKey(rows: number): number {
    return this.epilogue.ops.length > 0 || this.allowSplit ? rows : 0;
  }

  /**
   * Compiles the kernels and allocates the scratch of `rows` rows; throws LimitError (naming the
   * argument given at construction) when a dispatch would pass the device's workgroup limits.
   */
  async prepare(rows: number): Promise<void> {
    this.checkRows(rows);
    await this.set.prepare(this.scratchKey(rows));
    this.sink ??= this.engine.allocate(16, this.argument);
  }

  /** Throws LimitError (the argument given at construction) when `rows` rows pass the device's workgroup limits. */
  checkRows(rows: number): void {
    const limit = this.engine.device.limits.maxComputeWorkgroupsPerDimension;
    const largest = Math.max(rows, this.inFeatures + 1, this.outFeatures);
    if (Math.ceil(largest / ROWS) > limit) {
      throw new LimitError(this.argument, `${largest} rows or features need ${Math.ceil(largest / ROWS)} workgroups in one dimension; this device allows ${limit} (at most ${limit * ROWS})`);
    }
  }

  /** Whether prepare(rows) has run. */
  isPrepared(rows: number): boolean {
    return this.set.isPrepared(this.scratchKey(rows));
  }

  private uniformsOf(extra: Record<string, number>): Record<string, number> {
    return { ...extra, ...this.epilogue.dropout };
  }

  /** The plan, problem and (frozen) uniform values of the forward for `rows` rows, made once per rows. */
  private forwardEncoding(rows: number): { plan: Plan; problem: Problem; uniforms: Readonly<Record<string, number>> } {
    let encoding = this.forwardEncodings.get(rows);
    if (!encoding) {
      const plan = this.plan(rows);
      const problem = this.problem(rows, this.outFeatures, this.inFeatures, plan, plan.tiles.forward, plan.splits);
      const chunk = Math.ceil(problem.k / plan.splits);
      const uniforms = Object.freeze(this.uniformsOf({ m: problem.m, n: problem.n, k: problem.k, chunk, splits: plan.splits }));
      encoding = { plan, problem, uniforms };
      this.forwardEncodings.set(rows, encoding);
    }
    return encoding;
  }

  /** A product's sizes under `plan` (only the forward reads B as vec4). */
  private problem(m: number, n: number, k: number, plan: Plan, tile: TileShape, splits = 1, vector = plan.vector): Problem {
    return { m, n, k, splits, tiles: this.tiles, vector, tile };
  }

  /**
   * Encodes y = epilogue(x·weight + bias) for `rows` rows. The same operands and output as one of
   * the last few calls (by identity: solvers and apps encode the same few sets again and again)
   * encode that call's dispatches again, with no lookups, while their bind groups are alive.
   */
  encodeForward(pass: GPUComputePassEncoder, gate: GPUBuffer, operands: DenseOperands, y: BufferRegion, rows: number): void {
    const scratch = this.set.use(this.scratchKey(rows));
    const known = this.recentForward(gate, operands, y, rows);
    const calls = known ?? this.forwardCalls(gate, operands, y, rows, scratch.partial);
    for (const call of calls) {
      // A reused uniform counts as used, as engine.params would count it (its cache keeps the most recent).
      if (known && call.uniform) this.engine.touchUniform(call.uniform);
      call.kernel.dispatch(pass, call.group, call.x, call.y, call.z);
    }
    if (!known) {
      if (this.recentForwards.length >= RECENT_FORWARDS) this.recentForwards.shift();
      this.recentForwards.push({ gate, x: operands.x, weight: operands.weight, bias: operands.bias, qd: operands.qd, y, rows, calls });
    }
  }

  /** The dispatches of the forward (the product, and split-k's combine). */
  private forwardCalls(gate: GPUBuffer, operands: DenseOperands, y: BufferRegion, rows: number, partial: GPUBuffer | undefined): KernelCall[] {
    const { plan, problem, uniforms } = this.forwardEncoding(rows);
    const kernel = this.forwardKernel(plan);
    const bindings = { gate, x: operands.x, weight: operands.weight, weight4: operands.weight, bias: operands.bias, epi_qd: operands.qd ?? operands.bias, y };
    if (plan.forward === 'split' && partial) {
      return [
        this.set.call(kernel, problem, { gate, x: operands.x, weight: operands.weight, weight4: operands.weight, gemm_partial: partial }, uniforms),
        this.set.call('forwardCombine', problem, { ...bindings, gemm_partial: partial }, uniforms),
      ];
    }
    return [this.set.call(kernel, problem, bindings, uniforms)];
  }

  /** The dispatches of a recent call with these operands and output, when all its groups are alive. */
  private recentForward(gate: GPUBuffer, operands: DenseOperands, y: BufferRegion, rows: number): readonly KernelCall[] | undefined {
    for (const entry of this.recentForwards) {
      if (entry.y !== y || entry.x !== operands.x || entry.rows !== rows || entry.gate !== gate || entry.qd !== operands.qd) continue;
      if (entry.weight !== operands.weight || entry.bias !== operands.bias) continue;
      let live = true;
      for (const call of entry.calls) live &&= call.kernel.isLive(call.group);
      if (live) return entry.calls;
    }
    return undefined;
  }

  /**
   * Encodes the adjoint at x for the cotangent `grads.gradOutput`: δ = ∂(x·weight + bias) through
   * the chain (and ∂Qd at its add(Qd)), then ∂weight = xᵀδ with ∂bias = Σ_rows δ, and
   * ∂x = δ·weightᵀ (+ gradInputAdd), each only when its buffer is given. With the forward's gate,
   * a dropout op applies the forward's mask.
   */
  encodeAdjoint(pass: GPUComputePassEncoder, gate: GPUBuffer, operands: DenseOperands, grads: DenseGradients, rows: number): void {
    const scratch = this.set.use(this.scratchKey(rows));
    const sink = this.sink as GPUBuffer;
    const { plan } = this.forwardEncoding(rows);
    const { inFeatures: k, outFeatures: n } = this;
    let delta: BufferRegion = grads.gradOutput;
    if (this.epilogue.ops.length > 0) {
      // δ equals ∂Qd when the chain opens with add(Qd): write it there and save a pass over it.
      const direct = grads.gradQd !== undefined && !grads.gradQd.accumulate && this.epilogue.ops[0] === 'add-qd';
      delta = direct && grads.gradQd ? grads.gradQd.region : (scratch.delta as GPUBuffer);
      const qdMode = grads.gradQd === undefined || direct ? 0 : grads.gradQd.accumulate ? 2 : 1;
      const problem = this.problem(rows, n, k, plan, plan.tiles.forward, 1, false);
      const uniforms = this.frozenUniforms(`delta:${rows}:${qdMode}`, () => this.uniformsOf({ m: rows, n, k, qd_mode: qdMode }));
      this.set.dispatch(pass, plan.adjointTiled ? `deltaTiled@${plan.tiles.forward.edge}` : 'deltaRows', problem, {
        gate, x: operands.x, weight: operands.weight, bias: operands.bias, epi_qd: operands.qd ?? operands.bias,
        g_out: grads.gradOutput, delta, dqd: qdMode === 0 ? sink : (grads.gradQd as QdGradient).region,
      }, uniforms);
    } else if (grads.gradQd) {
      throw new Error('dense adjoint: ∂Qd asked of a chain without add(Qd)');
    }
    if (grads.gradWeight || grads.gradBias) {
      // With only ∂bias wanted, the product is the row of ones alone (in_features = 0).
      const inRows = grads.gradWeight ? k : 0;
      const m = inRows + (grads.gradBias ? 1 : 0);
      const problem = this.problem(m, n, rows, plan, plan.tiles.weight, 1, false);
      this.set.dispatch(pass, plan.adjointTiled ? `weightTiled@${plan.tiles.weight.edge}` : 'weightRows', problem, {
        gate, x: grads.gradWeight ? operands.x : delta, delta, dw: grads.gradWeight ?? sink, db: grads.gradBias ?? sink,
      }, this.frozenUniforms(`weight:${rows}:${m}:${inRows}`, () => ({ m, n, k: rows, in_features: grads.gradBias ? inRows : m })));
    }
    if (grads.gradInput) {
      const problem = this.problem(rows, k, n, plan, plan.tiles.input, 1, false);
      this.set.dispatch(pass, plan.adjointTiled ? `inputTiled@${plan.tiles.input.edge}` : 'inputRows', problem, {
        gate, delta, weight: operands.weight, add: grads.gradInputAdd ?? delta, dx: grads.gradInput,
      }, this.frozenUniforms(`input:${rows}:${grads.gradInputAdd ? 1 : 0}`, () => ({ m: rows, n: k, k: n, use_add: grads.gradInputAdd ? 1 : 0 })));
    }
  }

  /**
   * The adjoint's uniform values of one configuration, made and frozen once (engine.params then
   * keeps their key): the IFT adjoint solve encodes the adjoint every iteration.
   */
  private frozenUniforms(key: string, make: () => Record<string, number>): Readonly<Record<string, number>> {
    let values = this.adjointUniforms.get(key);
    if (!values) {
      values = Object.freeze(make());
      this.adjointUniforms.set(key, values);
    }
    return values;
  }

  /** Frees the scratch buffers. */
  dispose(): void {
    this.set.dispose();
    if (this.sink) this.engine.releaseBuffer(this.sink);
    this.sink = undefined;
  }
}
