/**
 * CPU view of the control block (shaders/lib/control.wgsl). Offsets come from reflecting the
 * WGSL struct (at build time, src/gpu/shaders.ts), so the two sides cannot drift apart.
 */
import { CONTROL_HEADER_LAYOUT, CONTROL_LAYOUT } from '../gpu/shaders';

interface Field {
  offset: number;
  type: string;
}

function reflectControl(): { fields: Map<string, Field>; headerBytes: number; headerSize: number } {
  const control = CONTROL_LAYOUT;
  const header = CONTROL_HEADER_LAYOUT;
  if (!control || !header) throw new Error('control.wgsl has no struct Control or ControlHeader');
  const [h, trace] = control.members;
  if (h?.name !== 'h' || h.offset !== 0 || trace?.name !== 'trace') throw new Error('Control must be { h: ControlHeader, trace }');
  const fields = new Map<string, Field>();
  for (const member of header.members) fields.set(member.name, { offset: member.offset, type: member.type });
  return { fields, headerBytes: trace.offset, headerSize: header.size };
}

const LAYOUT = reflectControl();

/** Words that layers read by position through their gate binding (shaders/lib/gate.wgsl). */
const GATE_WORDS = ['skip_eval', 'eval_index', 'noise_key', 'noise_on'] as const;
GATE_WORDS.forEach((name, word) => {
  if (LAYOUT.fields.get(name)?.offset !== 4 * word) throw new Error(`Control.${name} must be word ${word} (lib/gate.wgsl reads it there)`);
});

/** Bytes before the trace array. */
export const CONTROL_HEADER_BYTES = LAYOUT.headerBytes;
/** Bytes of the header alone (the ControlHeader struct: the fused steps' second header buffer). */
export const CONTROL_HEADER_SIZE = LAYOUT.headerSize;
/** Bytes of one trace entry (vec2<f32>). */
export const TRACE_ENTRY_BYTES = 8;

/** Decoded control header (plus the trace, when it was copied). */
export interface ControlSnapshot {
  done: boolean;
  nstep: number;
  tnstep: number;
  converged: boolean;
  nonFinite: boolean;
  /** Stopped by the stall rule (options.stallSteps). */
  stalled: boolean;
  bestNValid: number;
  bestAbs: number;
  bestRel: number;
  /** Trace entries recorded so far. */
  ntrace: number;
  trace?: { abs: number[]; rel: number[] };
  /** The first measurement (the starting point's residual), when the bytes read include it. */
  initial?: { abs: number; rel: number };
}

function field(view: DataView, name: string): number {
  const f = LAYOUT.fields.get(name);
  if (!f) throw new Error(`Control has no field ${name}`);
  return f.type === 'f32' ? view.getFloat32(f.offset, true) : view.getUint32(f.offset, true);
}

/** What stochastic layers read from the control block: the solve's key and mode. */
export interface NoiseSettings {
  /** options.key (a u32). */
  key: number;
  /** options.inference: no noise. */
  inference: boolean;
}

/**
 * The header a solve starts from: all zero (evaluation index 0 included) but the line-search
 * steps (1) and the noise settings.
 */
export function initialControl(noise: NoiseSettings): ArrayBuffer {
  const bytes = new ArrayBuffer(CONTROL_HEADER_BYTES);
  const view = new DataView(bytes);
  view.setUint32(4 * GATE_WORDS.indexOf('noise_key'), noise.key >>> 0, true);
  view.setUint32(4 * GATE_WORDS.indexOf('noise_on'), noise.inference ? 0 : 1, true);
  for (const name of ['ls_s', 'ls_eval_s']) {
    const f = LAYOUT.fields.get(name);
    if (f) view.setFloat32(f.offset, 1, true);
  }
  return bytes;
}

/** Decodes a copy of the control buffer. */
/** `withTrace`: decode the trace entries that `bytes` holds (the trace is then present, perhaps empty). */
export function decodeControl(bytes: ArrayBuffer, withTrace = false): ControlSnapshot {
  const view = new DataView(bytes);
  const snapshot: ControlSnapshot = {
    done: field(view, 'done') !== 0,
    nstep: field(view, 'nstep'),
    tnstep: field(view, 'tnstep'),
    converged: field(view, 'converged') !== 0,
    nonFinite: field(view, 'nonfinite') !== 0,
    stalled: field(view, 'stalled') !== 0,
    bestNValid: field(view, 'best_nvalid'),
    bestAbs: field(view, 'best_abs'),
    bestRel: field(view, 'best_rel'),
    ntrace: field(view, 'ntrace'),
  };
  if (snapshot.ntrace > 0 && bytes.byteLength >= CONTROL_HEADER_BYTES + TRACE_ENTRY_BYTES) {
    snapshot.initial = { abs: view.getFloat32(CONTROL_HEADER_BYTES, true), rel: view.getFloat32(CONTROL_HEADER_BYTES + 4, true) };
  }
  if (withTrace) {
    const count = Math.min(snapshot.ntrace, Math.floor((bytes.byteLength - CONTROL_HEADER_BYTES) / TRACE_ENTRY_BYTES));
    const abs: number[] = [];
    const rel: number[] = [];
    for (let k = 0; k < count; k++) {
      abs.push(view.getFloat32(CONTROL_HEADER_BYTES + k * TRACE_ENTRY_BYTES, true));
      rel.push(view.getFloat32(CONTROL_HEADER_BYTES + k * TRACE_ENTRY_BYTES + 4, true));
    }
    snapshot.trace = { abs, rel };
  }
  return snapshot;
}
