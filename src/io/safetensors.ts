/**
 * The safetensors format on the host (no GPU, no Node API, so browsers can bundle it): an 8-byte
 * little-endian header length N, N bytes of JSON header (padded with spaces), then the tensors'
 * little-endian bytes. Header entries are `name: { dtype, shape, data_offsets: [begin, end] }`,
 * offsets counted from the end of the header; `__metadata__` maps strings to strings.
 */
import { FormatError, ShapeError } from '../errors';

/** Bytes per element of the dtypes the format defines. */
const ITEM_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8,
};

/** The dtypes read into float32 tensors. */
const FLOAT_DTYPES = ['F32', 'F64', 'F16', 'BF16'] as const;

/** Headers above this size are rejected as corrupt (the reference implementation's limit). */
const MAX_HEADER_BYTES = 100_000_000;

const METADATA = '__metadata__';

/** @internal One tensor of a parsed file: where its bytes are and how to read them. */
export interface SafetensorsEntry {
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly begin: number;
  readonly end: number;
}

/** @internal A validated file: its entries in header order, its metadata and its bytes. */
export interface SafetensorsFile {
  readonly entries: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
  readonly bytes: Uint8Array;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * @internal Parses and validates a safetensors file: header length against the file size, UTF-8
 * JSON object, every entry's dtype, shape and offsets (in bounds, matching the shape, not
 * overlapping), metadata values. `source` names the input in errors (`'source'`); a tensor's
 * errors name `source.<tensor>`.
 *
 * @throws FormatError on any violation.
 */
export function parseSafetensors(bytes: Uint8Array, source: string): SafetensorsFile {
  if (bytes.byteLength < 8) {
    throw new FormatError(source, `is ${bytes.byteLength} bytes; a safetensors file starts with an 8-byte header length`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const declared = view.getBigUint64(0, true);
  if (declared > BigInt(Math.min(bytes.byteLength - 8, MAX_HEADER_BYTES))) {
    throw new FormatError(source, `declares a ${declared}-byte header but holds ${bytes.byteLength - 8} bytes after the length (not a safetensors file, or truncated)`);
  }
  const headerBytes = Number(declared);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerBytes)));
  } catch (err) {
    throw new FormatError(source, `header is not UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isRecord(header)) throw new FormatError(source, 'header must be a JSON object');
  const dataStart = 8 + headerBytes;
  const dataBytes = bytes.byteLength - dataStart;
  const entries = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  for (const [name, raw] of Object.entries(header)) {
    const argument = `${source}.${name}`;
    if (name === METADATA) {
      if (!isRecord(raw) || Object.values(raw).some((v) => typeof v !== 'string')) {
        throw new FormatError(argument, 'must map strings to strings');
      }
      metadata = raw as Record<string, string>;
      continue;
    }
    if (!isRecord(raw)) throw new FormatError(argument, 'header entry must be an object with dtype, shape and data_offsets');
    const { dtype, shape, data_offsets: offsets } = raw;
    if (typeof dtype !== 'string' || !(dtype in ITEM_BYTES)) {
      throw new FormatError(argument, `dtype ${JSON.stringify(dtype)} is not a safetensors dtype`);
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw new FormatError(argument, `shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      throw new FormatError(argument, `data_offsets must be [begin, end] with 0 ≤ begin ≤ end, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataBytes) {
      throw new FormatError(argument, `data_offsets [${begin}, ${end}] run past the ${dataBytes} data bytes (truncated file?)`);
    }
    const expected = (shape as number[]).reduce((a, b) => a * b, 1) * ITEM_BYTES[dtype];
    if (end - begin !== expected) {
      throw new FormatError(argument, `shape [${shape.join(', ')}] of ${dtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`);
    }
    entries.set(name, { dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end });
  }
  const sorted = [...entries].sort((a, b) => a[1].begin - b[1].begin);
  for (let i = 1; i < sorted.length; i++) {
    const [prevName, prev] = sorted[i - 1];
    const [name, entry] = sorted[i];
    if (entry.begin < prev.end) throw new FormatError(`${source}.${name}`, `bytes overlap those of tensor "${prevName}"`);
  }
  return { entries, metadata, bytes };
}

/** float16 bits → number. */
function halfToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/**
 * @internal The values of tensor `name` as float32 (F64 rounded, F16 and BF16 widened).
 *
 * @throws FormatError (`source.<name>`) for a dtype that is not a float type.
 */
export function readFloat32(file: SafetensorsFile, name: string, source: string): Float32Array {
  const entry = file.entries.get(name);
  if (!entry) throw new FormatError(`${source}.${name}`, 'no such tensor in the file');
  const view = new DataView(file.bytes.buffer, file.bytes.byteOffset + entry.begin, entry.end - entry.begin);
  const dtype = entry.dtype as (typeof FLOAT_DTYPES)[number];
  if (!FLOAT_DTYPES.includes(dtype)) {
    throw new FormatError(`${source}.${name}`, `dtype ${entry.dtype} is not supported (tensors load as float32 from ${FLOAT_DTYPES.join(', ')})`);
  }
  const count = view.byteLength / ITEM_BYTES[dtype];
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    if (dtype === 'F32') out[i] = view.getFloat32(4 * i, true);
    else if (dtype === 'F64') out[i] = view.getFloat64(8 * i, true);
    else if (dtype === 'F16') out[i] = halfToNumber(view.getUint16(2 * i, true));
    else out[i] = new Float32Array(new Uint32Array([view.getUint16(2 * i, true) << 16]).buffer)[0];
  }
  return out;
}

/** @internal A float32 tensor on the host, to encode. */
export interface HostTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * @internal Encodes float32 tensors (in the given order, contiguous) and string metadata as a
 * safetensors file. The header is padded with spaces so the data starts 8-byte aligned.
 *
 * @throws ShapeError (`<argument>.<name>`) when a tensor's data length does not match its shape.
 */
export function encodeSafetensors(tensors: ReadonlyMap<string, HostTensor>, metadata: Readonly<Record<string, string>>, argument: string): Uint8Array<ArrayBuffer> {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header[METADATA] = metadata;
  let offset = 0;
  for (const [name, { shape, data }] of tensors) {
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== data.length) throw new ShapeError(`${argument}.${name}`, `has ${data.length} values but shape [${shape.join(', ')}] needs ${size}`);
    header[name] = { dtype: 'F32', shape: [...shape], data_offsets: [offset, offset + 4 * size] };
    offset += 4 * size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) {
    const spaced = new Uint8Array(padded).fill(0x20);
    spaced.set(json);
    json = spaced;
  }
  const out = new Uint8Array(8 + padded + offset);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  let at = 8 + padded;
  for (const { data } of tensors.values()) {
    for (let i = 0; i < data.length; i++, at += 4) view.setFloat32(at, data[i], true);
  }
  return out;
}
