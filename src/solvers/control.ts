/**
 * CPU view of the control block (shaders/lib/control.wgsl). Offsets come from reflecting the
 * WGSL struct, so the two sides cannot drift apart.
 */
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { CONTROL_WGSL } from '../gpu/shaders';

interface Field {
  offset: number;
  type: string;
}

function reflectControl(): { fields: Map<string, Field>; headerBytes: number } {
  const struct = new WgslReflect(CONTROL_WGSL).structs.find((s) => s.name === 'Control');
  if (!struct) throw new Error('control.wgsl has no struct Control');
  const fields = new Map<string, Field>();
  let headerBytes = 0;
  for (const member of struct.members) {
    if (member.name === 'trace') headerBytes = member.offset;
    else fields.set(member.name, { offset: member.offset, type: member.type.name });
  }
  return { fields, headerBytes };
}

const LAYOUT = reflectControl();

/** Bytes before the trace array. */
export const CONTROL_HEADER_BYTES = LAYOUT.headerBytes;
/** Bytes of one trace entry (vec2<f32>). */
export const TRACE_ENTRY_BYTES = 8;

/** Decoded control header (plus the trace, when it was copied). */
export interface ControlSnapshot {
  done: boolean;
  nstep: number;
  tnstep: number;
  converged: boolean;
  nonFinite: boolean;
  bestNValid: number;
  bestAbs: number;
  bestRel: number;
  trace?: { abs: number[]; rel: number[] };
}

function field(view: DataView, name: string): number {
  const f = LAYOUT.fields.get(name);
  if (!f) throw new Error(`Control has no field ${name}`);
  return f.type === 'f32' ? view.getFloat32(f.offset, true) : view.getUint32(f.offset, true);
}

/** The header a solve starts from: all zero but the line-search steps (1). */
export function initialControl(): ArrayBuffer {
  const bytes = new ArrayBuffer(CONTROL_HEADER_BYTES);
  const view = new DataView(bytes);
  for (const name of ['ls_s', 'ls_eval_s']) {
    const f = LAYOUT.fields.get(name);
    if (f) view.setFloat32(f.offset, 1, true);
  }
  return bytes;
}

/** Decodes a copy of the control buffer. */
export function decodeControl(bytes: ArrayBuffer): ControlSnapshot {
  const view = new DataView(bytes);
  const snapshot: ControlSnapshot = {
    done: field(view, 'done') !== 0,
    nstep: field(view, 'nstep'),
    tnstep: field(view, 'tnstep'),
    converged: field(view, 'converged') !== 0,
    nonFinite: field(view, 'nonfinite') !== 0,
    bestNValid: field(view, 'best_nvalid'),
    bestAbs: field(view, 'best_abs'),
    bestRel: field(view, 'best_rel'),
  };
  if (bytes.byteLength > CONTROL_HEADER_BYTES) {
    const count = Math.min(field(view, 'ntrace'), (bytes.byteLength - CONTROL_HEADER_BYTES) / TRACE_ENTRY_BYTES);
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
