/// <reference types="@webgpu/types" />
// The live training page: a DeqClassifier trained on MNIST in the browser through WebGPU, with
// live plots, a grid of held-out predictions and a drawing pad. Settings can be preset through
// URL query parameters (e.g. `?hidden=32&batch=32`) so tests and links can pick small runs.
import { Engine, NoAdapterError, type Convergence } from '../src';
import { loadMnist, type MnistData } from './mnist/data';
import { DeqClassifier, INPUTS, type BackpropName, type DeqConfig, type SolverName } from './mnist/model';
import { LiveChart } from './charts';
import { SketchPad, drawDigit } from './sketch';

/** What the page exposes on `window.__demoState` for tests and the curious. */
export interface DemoState {
  phase: 'loading' | 'ready' | 'running' | 'paused' | 'error' | 'no-webgpu';
  message: string;
  steps: number;
  epoch: number;
  losses: number[];
  accuracies: number[];
  /** Forward solver iterations per step. */
  iterations: number[];
  heldout: { step: number; accuracy: number }[];
  /** ρ(J_f) of the block at the training solve's fixed point, every `radiusEvery` steps. */
  radii: { step: number; radius: number }[];
  /** Points the spectral-radius plot holds. */
  radiusPlotted: number;
  /** Length of the latest training solve's residual trace. */
  traceLength: number;
  sketchPrediction: number | null;
  sketchIterations: number | null;
  adapter: string;
  stepsPerSecond: number | null;
  gpuErrors: string[];
  /** Name of the file the current model was loaded from (Load model), or null. */
  loadedFrom: string | null;
  /** The solves' convergence mode (`?convergence=batch` or `per-sample`, the default). */
  convergence: Convergence;
  /**
   * Mean iterations of the latest training batch's per-sample solve, by digit (index = label;
   * null: no such digit in the batch); empty when the solve had no per-sample stats (gdeq with
   * broyden, or `?convergence=batch`).
   */
  iterationsPerDigit: (number | null)[];
}

declare global {
  interface Window {
    __demoState: DemoState;
  }
}

/** Held-out digits scored each evaluation; small so evaluation stays a fraction of an epoch's time. */
const HELDOUT_DEFAULT = 500;
const GRID_SIZE = 24;
const DATA_SEED = 0;

const state: DemoState = {
  phase: 'loading',
  message: 'Loading…',
  steps: 0,
  epoch: 0,
  losses: [],
  accuracies: [],
  iterations: [],
  heldout: [],
  radii: [],
  radiusPlotted: 0,
  traceLength: 0,
  sketchPrediction: null,
  sketchIterations: null,
  adapter: '',
  stepsPerSecond: null,
  gpuErrors: [],
  loadedFrom: null,
  convergence: new URLSearchParams(location.search).get('convergence') === 'batch' ? 'batch' : 'per-sample',
  iterationsPerDigit: [],
};
window.__demoState = state;

function el<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`#${id} missing from the page`);
  return found as T;
}

const form = el<HTMLFormElement>('controls');
const startButton = el<HTMLButtonElement>('start');
const pauseButton = el<HTMLButtonElement>('pause');
const resetButton = el<HTMLButtonElement>('reset');
const downloadButton = el<HTMLButtonElement>('download');
const loadInput = el<HTMLInputElement>('load');
const statusLine = el<HTMLDivElement>('status');
const query = new URLSearchParams(location.search);

function setStatus(phase: DemoState['phase'], message: string): void {
  state.phase = phase;
  state.message = message;
  statusLine.textContent = message;
  statusLine.classList.toggle('error', phase === 'error' || phase === 'no-webgpu');
  startButton.disabled = !(phase === 'ready' || phase === 'paused');
  pauseButton.disabled = phase !== 'running';
  resetButton.disabled = phase === 'loading' || phase === 'error' || phase === 'no-webgpu';
  downloadButton.disabled = loadInput.disabled = !(phase === 'ready' || phase === 'paused');
}

function field(name: string): HTMLInputElement | HTMLSelectElement {
  const f = form.elements.namedItem(name);
  if (!(f instanceof HTMLInputElement || f instanceof HTMLSelectElement)) throw new Error(`control ${name} missing`);
  return f;
}

// Query parameters preset the controls.
for (const name of ['solver', 'backprop', 'hidden', 'batch', 'lr', 'maxDepth', 'eps']) {
  const v = query.get(name);
  if (v !== null) field(name).value = v;
}
const evalEvery = Number(query.get('evalEvery') ?? 0); // 0: once per epoch
/** Steps between spectral-radius estimates; each costs RADIUS_ITERATIONS VJPs of the block, read with the loss. */
const radiusEvery = Math.max(1, Math.round(Number(query.get('radiusEvery') ?? 5)));
const RADIUS_ITERATIONS = 30;
const heldoutSize = Math.max(GRID_SIZE, Number(query.get('heldout') ?? HELDOUT_DEFAULT));

function positiveInt(name: string, fallback: number): number {
  const v = Math.round(Number(field(name).value));
  return Number.isFinite(v) && v >= 1 ? v : fallback;
}

function positiveNumber(name: string, fallback: number): number {
  const v = Number(field(name).value);
  return Number.isFinite(v) && v >= 0 ? v : fallback;
}

function readConfig(): Partial<DeqConfig> {
  return {
    solver: field('solver').value as SolverName,
    backprop: field('backprop').value as BackpropName,
    hidden: positiveInt('hidden', 64),
    lr: positiveNumber('lr', 3e-3),
    maxDepth: positiveInt('maxDepth', 12),
    eps: positiveNumber('eps', 1e-3),
  };
}

// ---- plots -------------------------------------------------------------------------------------
const lossChart = new LiveChart(el('plot-loss'), {
  title: 'Training loss and batch accuracy',
  xLabel: 'step',
  series: [
    { label: 'loss', stroke: '#d9480f' },
    { label: 'batch accuracy (right)', stroke: '#2b8a3e', scale: 'acc' },
  ],
  right: { scale: 'acc', range: [0, 1] },
});
const heldoutChart = new LiveChart(el('plot-heldout'), {
  title: 'Held-out accuracy',
  xLabel: 'step',
  series: [{ label: 'held-out accuracy', stroke: '#1c7ed6' }],
  yRange: [0, 1],
  points: true,
});
const iterChart = new LiveChart(el('plot-iters'), {
  title: 'Forward solve per step',
  xLabel: 'step',
  series: [
    { label: 'iterations', stroke: '#7048e8' },
    { label: 'f-evals', stroke: '#adb5bd' },
  ],
});
const radiusChart = new LiveChart(el('plot-radius'), {
  title: 'Spectral radius ρ(J_f) at u* (< 1: contraction)',
  xLabel: 'step',
  series: [
    { label: 'ρ(J_f)', stroke: '#c2255c' },
    { label: 'ρ = 1', stroke: '#adb5bd' },
  ],
  points: true,
});
// Per-sample solves: how many iterations each digit's own solve took, in the latest batch.
const DIGITS = Array.from({ length: 10 }, (_, digit) => digit);
const digitChart = new LiveChart(el('plot-digits'), {
  title: 'Iterations per digit, latest batch (per-sample solves)',
  xLabel: 'digit',
  series: [
    { label: 'max', stroke: '#f08c00' },
    { label: 'mean', stroke: '#7048e8' },
  ],
  bars: true,
});

/** Plots each digit's mean and largest iterations (`nstep[r]` of the row labelled `labels[r]`). */
function showDigitIterations(labels: Uint8Array, nstep: readonly number[] | undefined): void {
  if (!nstep) {
    state.iterationsPerDigit = [];
    digitChart.clear();
    return;
  }
  const sum = new Array<number>(10).fill(0);
  const count = new Array<number>(10).fill(0);
  const max = new Array<number | null>(10).fill(null);
  nstep.forEach((n, r) => {
    const digit = labels[r];
    sum[digit] += n;
    count[digit]++;
    max[digit] = Math.max(max[digit] ?? 0, n);
  });
  state.iterationsPerDigit = DIGITS.map((digit) => (count[digit] > 0 ? sum[digit] / count[digit] : null));
  digitChart.replace(DIGITS, [max, state.iterationsPerDigit]);
}

/** One residual curve per solver: switch the solver, press Reset, and the curves compare. */
const TRACE_SOLVERS: readonly SolverName[] = ['picard', 'anderson', 'broyden'];
const latestTraces = new Map<SolverName, number[]>();
const traceChart = new LiveChart(el('plot-trace'), {
  title: 'Residual per iteration, latest solve per solver',
  xLabel: 'iteration',
  series: [
    { label: 'picard', stroke: '#e8590c' },
    { label: 'anderson', stroke: '#1c7ed6' },
    { label: 'broyden', stroke: '#2f9e44' },
  ],
  logY: true,
  points: true,
});

function showTraces(): void {
  const length = Math.max(0, ...[...latestTraces.values()].map((t) => t.length));
  const x = Array.from({ length }, (_, i) => i);
  // The log scale cannot show exact zeros; missing iterations are gaps.
  const ys = TRACE_SOLVERS.map((solver) => {
    const trace = latestTraces.get(solver) ?? [];
    return x.map((i) => (i < trace.length ? Math.max(trace[i], 1e-12) : null));
  });
  traceChart.replace(x, ys);
}

// ---- held-out grid ------------------------------------------------------------------------------
const gridCells: { cell: HTMLDivElement; label: HTMLSpanElement }[] = [];
function buildGrid(data: MnistData): void {
  const grid = el<HTMLDivElement>('grid');
  grid.replaceChildren();
  gridCells.length = 0;
  for (let i = 0; i < GRID_SIZE; i++) {
    const cell = document.createElement('div');
    cell.className = 'cell';
    const canvas = document.createElement('canvas');
    canvas.width = 28;
    canvas.height = 28;
    drawDigit(canvas, data.test.images.subarray(i * INPUTS, (i + 1) * INPUTS));
    const label = document.createElement('span');
    label.textContent = '?';
    cell.append(canvas, label);
    grid.append(cell);
    gridCells.push({ cell, label });
  }
}

// ---- GPU work is serialised: the model reuses one input buffer for training and prediction ----
let gpuQueue: Promise<unknown> = Promise.resolve();
function exclusive<T>(work: () => Promise<T>): Promise<T> {
  const next = gpuQueue.then(work);
  gpuQueue = next.catch(() => undefined);
  return next;
}

function nextTask(): Promise<void> {
  // A macrotask boundary: input events and painting get their turn between steps.
  return new Promise((res) => setTimeout(res, 0));
}

// ---- training -----------------------------------------------------------------------------------
let engine: Engine | null = null;
let data: MnistData | null = null;
let model: DeqClassifier | null = null;
let running = false;
let loopDone: Promise<void> = Promise.resolve();
let order: Uint32Array = new Uint32Array(0);
let cursor = 0;
let emaStepMs: number | null = null;
let emaFevalUs: number | null = null;

function shuffled(n: number, random: () => number): Uint32Array {
  const o = Uint32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [o[i], o[j]] = [o[j], o[i]];
  }
  return o;
}

function nextBatch(d: MnistData, batch: number): { images: Float32Array; labels: Uint8Array } {
  const images = new Float32Array(batch * INPUTS);
  const labels = new Uint8Array(batch);
  for (let r = 0; r < batch; r++) {
    if (cursor >= order.length) {
      cursor = 0;
      state.epoch++;
      order = shuffled(order.length, Math.random);
    }
    const id = order[cursor++];
    images.set(d.train.images.subarray(id * INPUTS, (id + 1) * INPUTS), r * INPUTS);
    labels[r] = d.train.labels[id];
  }
  return { images, labels };
}

function text(id: string, value: string): void {
  el(id).textContent = value;
}

function ema(prev: number | null, x: number): number {
  return prev === null ? x : 0.9 * prev + 0.1 * x;
}

async function evaluateHeldout(m: DeqClassifier, d: MnistData): Promise<void> {
  const images = d.test.images.subarray(0, heldoutSize * INPUTS);
  const predictions = await m.predict(images, 250);
  let correct = 0;
  predictions.forEach((p, i) => {
    if (p === d.test.labels[i]) correct++;
  });
  const accuracy = correct / predictions.length;
  state.heldout.push({ step: state.steps, accuracy });
  heldoutChart.push(state.steps, [accuracy]);
  text('stat-heldout', `${(100 * accuracy).toFixed(1)} % of ${predictions.length}`);
  gridCells.forEach(({ cell, label }, i) => {
    label.textContent = String(predictions[i]);
    cell.classList.toggle('wrong', predictions[i] !== d.test.labels[i]);
  });
}

async function trainStep(m: DeqClassifier, d: MnistData): Promise<void> {
  const batch = positiveInt('batch', 64);
  const epochBefore = state.epoch;
  const { images, labels } = nextBatch(d, batch);
  const t0 = performance.now();
  const radiusDue = state.steps % radiusEvery === 0;
  const stats = await m.trainStep(images, labels, true, undefined, radiusDue ? RADIUS_ITERATIONS : 0);
  const ms = performance.now() - t0;
  const trace = m.lastSolve?.trace?.abs ?? [];
  state.steps++;
  state.losses.push(stats.loss ?? NaN);
  state.accuracies.push(stats.accuracy ?? NaN);
  state.iterations.push(stats.nstep);
  state.traceLength = trace.length;
  lossChart.push(state.steps, [stats.loss ?? NaN, stats.accuracy ?? NaN]);
  iterChart.push(state.steps, [stats.nstep, stats.tnstep]);
  if (stats.spectralRadius !== undefined) {
    state.radii.push({ step: state.steps, radius: stats.spectralRadius });
    radiusChart.push(state.steps, [stats.spectralRadius, 1]);
    state.radiusPlotted = radiusChart.length;
  }
  latestTraces.set(m.config.solver, trace);
  showTraces();
  showDigitIterations(labels, m.lastSolve?.perSample?.nstep);
  emaStepMs = ema(emaStepMs, ms);
  emaFevalUs = ema(emaFevalUs, (1000 * ms) / Math.max(1, stats.tnstep));
  state.stepsPerSecond = 1000 / emaStepMs;
  text('stat-step', String(state.steps));
  text('stat-epoch', String(state.epoch));
  text('stat-rate', state.stepsPerSecond.toFixed(1));
  text('stat-feval', emaFevalUs.toFixed(0));
  const due = evalEvery > 0 ? state.steps % evalEvery === 0 : state.epoch !== epochBefore;
  if (due) await evaluateHeldout(m, d);
}

async function loop(): Promise<void> {
  while (running && model && data) {
    const m = model;
    const d = data;
    try {
      await exclusive(() => trainStep(m, d));
    } catch (err) {
      running = false;
      fail(err);
      return;
    }
    await nextTask();
  }
}

async function newModel(): Promise<void> {
  if (!engine || !data) return;
  const e = engine;
  const d = data;
  await exclusive(async () => {
    model?.dispose();
    model = null;
    await install(await DeqClassifier.create(e, { ...readConfig(), seed: 0 }), d, null);
  });
}

/** Makes `m` the page's model (inside `exclusive`): fresh statistics and a first held-out score. */
async function install(m: DeqClassifier, d: MnistData, loadedFrom: string | null): Promise<void> {
  // Residual traces feed the convergence plot; the extra readback is a few hundred bytes.
  m.traceSolves = true;
  m.convergence = state.convergence;
  model = m;
  state.loadedFrom = loadedFrom;
  Object.assign(state, {
    steps: 0, epoch: 0, losses: [], accuracies: [], iterations: [], heldout: [], radii: [], radiusPlotted: 0, traceLength: 0,
    stepsPerSecond: null, iterationsPerDigit: [],
  });
  emaStepMs = null;
  emaFevalUs = null;
  order = shuffled(d.train.labels.length, Math.random);
  cursor = 0;
  for (const c of [lossChart, heldoutChart, iterChart, radiusChart, digitChart]) c.clear();
  showTraces(); // the other solvers' curves stay for comparison
  for (const id of ['stat-step', 'stat-epoch']) text(id, '0');
  for (const id of ['stat-rate', 'stat-feval', 'stat-heldout']) text(id, '–');
  // Accuracy before any training: the first point of the held-out plot.
  await evaluateHeldout(m, d);
}

/** Download model: the current parameters and config as `model.safetensors` (see model.ts). */
async function downloadModel(): Promise<void> {
  const m = model;
  if (!m) return;
  const bytes = await exclusive(() => m.toSafetensors());
  const url = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  const link = document.createElement('a');
  link.href = url;
  link.download = 'model.safetensors';
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Load model: a file saved by Download model or by `npm run train` replaces the current model. */
async function loadModel(file: File): Promise<void> {
  if (!engine || !data) return;
  const e = engine;
  const d = data;
  await pause();
  setStatus('loading', `Loading ${file.name}…`);
  let loaded: DeqClassifier;
  try {
    loaded = await DeqClassifier.fromSafetensors(e, file);
  } catch (err) {
    // The current model stays; the message says why the file was refused.
    setStatus('ready', `Could not load ${file.name}: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  await exclusive(async () => {
    model?.dispose();
    model = null;
    const { config } = loaded;
    for (const name of ['solver', 'backprop', 'hidden', 'lr', 'maxDepth', 'eps'] as const) field(name).value = String(config[name]);
    await install(loaded, d, file.name);
  });
  setStatus('ready', `Loaded ${file.name} (hidden ${loaded.config.hidden}, ${loaded.config.solver}): press Start to train on.`);
}

function start(): void {
  if (running || !model) return;
  running = true;
  setStatus('running', 'Training…');
  loopDone = loop();
}

async function pause(): Promise<void> {
  running = false;
  await loopDone;
  if (state.phase === 'running') setStatus('paused', `Paused at step ${state.steps}.`);
}

async function reset(): Promise<void> {
  await pause();
  setStatus('loading', 'Building a new model…');
  try {
    await newModel();
    setStatus('ready', 'Ready: press Start.');
  } catch (err) {
    fail(err);
  }
}

function fail(err: unknown): void {
  const message = err instanceof Error ? err.message : String(err);
  console.error(err);
  setStatus('error', `Error: ${message}`);
}

// ---- drawing pad --------------------------------------------------------------------------------
const pad = new SketchPad(el('pad'), el('pad-small'), (pixels) => {
  const m = model;
  if (!m) return;
  void exclusive(async () => {
    const [prediction] = await m.predict(pixels, 1);
    const solve = m.lastSolve;
    state.sketchPrediction = prediction;
    state.sketchIterations = solve?.nstep ?? null;
    text('pad-prediction', String(prediction));
    text(
      'pad-convergence',
      solve
        ? `${solve.converged ? 'converged' : 'stopped'} after ${solve.nstep} iterations, residual ${solve.absResidual.toExponential(1)}`
        : '',
    );
  }).catch(fail);
});
el('pad-clear').addEventListener('click', () => {
  pad.clear();
  state.sketchPrediction = null;
  text('pad-prediction', '–');
  text('pad-convergence', '');
});

startButton.addEventListener('click', start);
pauseButton.addEventListener('click', () => void pause());
resetButton.addEventListener('click', () => void reset());
downloadButton.addEventListener('click', () => void downloadModel().catch(fail));
loadInput.addEventListener('change', () => {
  const file = loadInput.files?.[0];
  loadInput.value = '';
  if (file) void loadModel(file).catch(fail);
});
field('lr').addEventListener('change', () => model?.setLearningRate(positiveNumber('lr', 3e-3)));

// ---- start-up -----------------------------------------------------------------------------------
function adapterName(device: GPUDevice): string {
  // adapterInfo on GPUDevice is recent (Chrome 132+); older browsers simply show nothing.
  const info = (device as Partial<Pick<GPUDevice, 'adapterInfo'>>).adapterInfo;
  if (!info) return 'unknown';
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((s) => s && s.length > 0);
  return parts.length > 0 ? [...new Set(parts)].join(' · ') : 'unknown';
}

async function init(): Promise<void> {
  if (!('gpu' in navigator) || navigator.gpu === undefined) {
    setStatus('no-webgpu', 'This browser has no WebGPU (navigator.gpu is undefined). Try a recent Chrome or Edge.');
    return;
  }
  setStatus('loading', 'Requesting a WebGPU device…');
  try {
    engine = await Engine.create();
  } catch (err) {
    if (err instanceof NoAdapterError || !(err instanceof Error) || /adapter|device/i.test(err.message)) {
      setStatus('no-webgpu', `WebGPU is present but no adapter/device is available: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    throw err;
  }
  state.adapter = adapterName(engine.device);
  text('stat-adapter', state.adapter);
  engine.device.addEventListener('uncapturederror', (ev) => {
    const message = (ev as GPUUncapturedErrorEvent).error.message;
    state.gpuErrors.push(message);
    console.warn('WebGPU error:', message);
  });
  setStatus('loading', 'Loading MNIST (10,000 digits, ~21 MB)…');
  // loadMnist imports the ~20 MB data chunk lazily, so the page renders before it arrives.
  data = await loadMnist({ seed: DATA_SEED });
  buildGrid(data);
  setStatus('loading', 'Building the model…');
  await newModel();
  setStatus('ready', `Ready: ${data.train.labels.length} training digits, ${heldoutSize} held-out. Press Start.`);
  if (query.get('autostart') === '1') start();
}

init().catch(fail);
