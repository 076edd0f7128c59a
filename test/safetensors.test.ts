// saveParams / loadParams in Node (Dawn): files checked by an independent reader written here
// (DataView + JSON.parse, following the safetensors layout), round trips on random data, loading
// into existing tensors, transposed layouts, converted dtypes, and every validation error.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AnchoraxError,
  DisposedError,
  Engine,
  EngineMismatchError,
  FormatError,
  NonFiniteError,
  OptionError,
  ShapeError,
  Tensor,
  loadParams,
  paramsMetadata,
  saveParams,
} from '../src';
import { BufferUsage } from '../src/gpu/flags';
import { platform, registerPlatform } from '../src/platform';
import { createTestEngine, randomArray, rng } from './helpers/engine';
import { expectError } from './helpers/layers';

let engine: Engine;
let dir: string;
beforeAll(async () => {
  engine = await createTestEngine();
  dir = await mkdtemp(join(tmpdir(), 'anchorax-safetensors-'));
});
afterAll(async () => {
  engine?.destroy();
  await rm(dir, { recursive: true, force: true });
});

const random = rng(2024);
const f32 = (n: number, scale = 1): Float32Array => Float32Array.from(randomArray(random, n, scale));

interface HandEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** The independent reader: header length, JSON header, and each tensor's raw bytes. */
function readByHand(bytes: Uint8Array): { headerLength: number; header: Record<string, unknown>; data: Uint8Array; headerText: string } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
  return { headerLength, header: JSON.parse(headerText) as Record<string, unknown>, data: bytes.subarray(8 + headerLength), headerText };
}

/** Little-endian float32 bytes of `values`, written without the library. */
function leBytes(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
  return out;
}

/** A safetensors file written by hand from a header object and the data bytes. */
function handFile(header: unknown, data: Uint8Array, headerText = JSON.stringify(header)): Uint8Array {
  const json = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

async function expectRejects(promise: Promise<unknown>, type: typeof AnchoraxError, argument: string, message?: RegExp): Promise<void> {
  const caught = await promise.then(() => undefined, (err: unknown) => err);
  expectError(() => {
    if (caught) throw caught;
  }, type, argument);
  if (message) expect((caught as AnchoraxError).message).toMatch(message);
}

describe('saveParams writes safetensors that an independent reader understands', () => {
  it('random tensors: header, order, alignment, offsets and every byte', async () => {
    const shapes: Record<string, number[]> = { 'layer.0.w': [7, 5], b: [5], x: [2, 3, 4], s: [1] };
    const values = Object.fromEntries(Object.entries(shapes).map(([n, s]) => [n, f32(s.reduce((a, b) => a * b, 1), 3)]));
    const params = Object.fromEntries(Object.entries(shapes).map(([n, s]) => [n, engine.tensor(values[n], s)]));
    const bytes = await saveParams(engine, params, { metadata: { note: 'random', config: '{"d":5}' } });
    const { headerLength, header, data, headerText } = readByHand(bytes);
    expect((8 + headerLength) % 8).toBe(0);
    expect(headerText.trimEnd()).toBe(JSON.stringify(JSON.parse(headerText)));
    expect(header.__metadata__).toEqual({ note: 'random', config: '{"d":5}' });
    expect(Object.keys(header).filter((k) => k !== '__metadata__')).toEqual(Object.keys(shapes));
    let offset = 0;
    for (const [name, shape] of Object.entries(shapes)) {
      const entry = header[name] as HandEntry;
      expect(entry.dtype).toBe('F32');
      expect(entry.shape).toEqual(shape);
      expect(entry.data_offsets).toEqual([offset, offset + values[name].length * 4]);
      expect(Array.from(data.subarray(offset, entry.data_offsets[1]))).toEqual(Array.from(leBytes(values[name])));
      offset = entry.data_offsets[1];
    }
    expect(data.length).toBe(offset);
    for (const t of Object.values(params)) t.dispose();
  });

  it('transpose stores a [in, out] weight as [out, in] (PyTorch nn.Linear.weight)', async () => {
    const w = f32(3 * 4);
    const W = engine.tensor(w, [3, 4]);
    const bytes = await saveParams(engine, { weight: W }, { transpose: ['weight'] });
    const { header, data } = readByHand(bytes);
    expect((header.weight as HandEntry).shape).toEqual([4, 3]);
    const expected = Array.from({ length: 12 }, (_, k) => w[(k % 3) * 4 + Math.floor(k / 3)]); // [o, i] = W[i, o]
    expect(Array.from(data)).toEqual(Array.from(leBytes(expected)));
    const back = await loadParams(engine, bytes, { transpose: ['weight'] });
    expect(back.weight.shape).toEqual([3, 4]);
    expect(Array.from(await back.weight.read())).toEqual(Array.from(w));
    W.dispose();
    back.weight.dispose();
  });
});

describe('loadParams reads what the format allows', () => {
  it('round trips from Uint8Array, ArrayBuffer and Blob, in file order, with metadata', async () => {
    const a = f32(6 * 2);
    const b = f32(9);
    const params = { a: engine.tensor(a, [6, 2]), b: engine.tensor(b, [9]) };
    const bytes = await saveParams(engine, params, { metadata: { epoch: '3' } });
    const copy = bytes.slice().buffer;
    for (const source of [bytes, copy, new Blob([bytes])]) {
      const loaded = await loadParams(engine, source);
      expect(Object.keys(loaded)).toEqual(['a', 'b']);
      expect(loaded.a.shape).toEqual([6, 2]);
      expect(Array.from(await loaded.a.read())).toEqual(Array.from(a));
      expect(Array.from(await loaded.b.read())).toEqual(Array.from(b));
      for (const t of Object.values(loaded)) t.dispose();
    }
    expect(await paramsMetadata(new Blob([bytes]))).toEqual({ epoch: '3' });
    for (const t of Object.values(params)) t.dispose();
  });

  it('into: overwrites existing tensors in place (resume training), checks names and shapes', async () => {
    const w = f32(4 * 4);
    const bytes = await saveParams(engine, { w: engine.tensor(w, [4, 4]), extra: engine.tensor([1, 2], [2]) });
    const target = engine.zeros([4, 4]);
    const result = await loadParams(engine, bytes, { into: { w: target } });
    expect(result.w).toBe(target);
    expect(Array.from(await target.read())).toEqual(Array.from(w));
    await expectRejects(loadParams(engine, bytes, { into: { w: engine.zeros([2, 8]) } }), ShapeError, 'source.w', /\[4, 4\].*\[2, 8\]/);
    await expectRejects(loadParams(engine, bytes, { into: { v: target } }), FormatError, 'source.v', /no such tensor/);
    const gone = engine.zeros([4, 4]);
    gone.dispose();
    await expectRejects(loadParams(engine, bytes, { into: { w: gone } }), DisposedError, 'options.into.w');
    await expectRejects(loadParams(engine, bytes, { into: { w: 'no' as unknown as Tensor } }), OptionError, 'options.into.w');
    const plain = engine.device.createBuffer({ size: 64, usage: BufferUsage.STORAGE });
    await expectRejects(loadParams(engine, bytes, { into: { w: engine.wrap(plain, [4, 4]) } }), ShapeError, 'options.into.w', /COPY_DST/);
    plain.destroy();
    target.dispose();
  });

  it('converts F64, F16 and BF16 (a hand-written file) to float32', async () => {
    const f64 = [0.1, -2.5, 1e-3];
    const f64Bytes = new Uint8Array(24);
    f64.forEach((v, i) => new DataView(f64Bytes.buffer).setFloat64(8 * i, v, true));
    // float16: 1, −2, 65504 (largest), 2^-24 (smallest subnormal), 0.5 + 2^-11.
    const f16Bits = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x3801];
    const f16Values = [1, -2, 65504, 2 ** -24, 0.5 + 2 ** -11];
    // bfloat16: the upper half of float32 1.5, −0.09375, 3.0e38 (rounded to bf16 bits).
    const bf16Bits = [0x3fc0, 0xbdc0, 0x7f62];
    const half = (bits: number[]): Uint8Array => {
      const out = new Uint8Array(bits.length * 2);
      bits.forEach((v, i) => new DataView(out.buffer).setUint16(2 * i, v, true));
      return out;
    };
    const data = new Uint8Array([...f64Bytes, ...half(f16Bits), ...half(bf16Bits)]);
    const header = {
      d: { dtype: 'F64', shape: [3], data_offsets: [0, 24] },
      h: { dtype: 'F16', shape: [5], data_offsets: [24, 34] },
      g: { dtype: 'BF16', shape: [3, 1], data_offsets: [34, 40] },
    };
    const loaded = await loadParams(engine, handFile(header, data));
    expect(Array.from(await loaded.d.read())).toEqual(Array.from(Float32Array.from(f64)));
    expect(Array.from(await loaded.h.read())).toEqual(f16Values);
    const bf = new Float32Array(new Uint32Array(bf16Bits.map((b) => b << 16)).buffer);
    expect(loaded.g.shape).toEqual([3, 1]);
    expect(Array.from(await loaded.g.read())).toEqual(Array.from(bf));
    expect(Array.from(bf).slice(0, 2)).toEqual([1.5, -0.09375]);
    for (const t of Object.values(loaded)) t.dispose();
  });

  it('a path without the Node entry is an OptionError; with node:fs registered it round trips', async () => {
    const t = engine.tensor(f32(8), [8]);
    const path = join(dir, 'params.safetensors');
    // As in a browser: no file access registered (the test setup registers Node's; put it back after).
    const { readFile: hostRead, writeFile: hostWrite } = platform;
    delete platform.readFile;
    delete platform.writeFile;
    try {
      await expectRejects(saveParams(engine, { t }, path), OptionError, 'path', /Node/);
      await expectRejects(loadParams(engine, path), OptionError, 'source', /Node/);
    } finally {
      registerPlatform({ readFile: hostRead, writeFile: hostWrite });
    }
    expect(platform.readFile).toBeTypeOf('function');
    const bytes = await saveParams(engine, { t }, path, { metadata: { k: 'v' } });
    expect(Array.from(new Uint8Array(await readFile(path)))).toEqual(Array.from(bytes));
    const loaded = await loadParams(engine, path);
    expect(Array.from(await loaded.t.read())).toEqual(Array.from(await t.read()));
    expect(await paramsMetadata(path)).toEqual({ k: 'v' });
    await expectRejects(loadParams(engine, join(dir, 'missing.safetensors')), FormatError, 'source', /cannot read/);
    loaded.t.dispose();
    t.dispose();
  });
});

describe('every malformed file is a typed error naming the source or tensor', () => {
  const ok = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
  const two = leBytes([1, 2]);
  const cases: [string, Uint8Array, typeof AnchoraxError, string, RegExp][] = [
    ['shorter than the length field', new Uint8Array(5), FormatError, 'source', /8-byte header length/],
    ['header length past the end', handFile({ x: ok }, two).subarray(0, 20), FormatError, 'source', /declares a \d+-byte header/],
    ['header not JSON', handFile(null, two, '{"x": '), FormatError, 'source', /not UTF-8 JSON/],
    ['header not UTF-8', handFile(null, new Uint8Array(0), '"\u00e9"').map((v, i) => (i === 9 ? 0xff : v)), FormatError, 'source', /not UTF-8 JSON/],
    ['header an array', handFile([1], two), FormatError, 'source', /JSON object/],
    ['entry not an object', handFile({ x: 3 }, two), FormatError, 'source.x', /entry must be an object/],
    ['unknown dtype', handFile({ x: { ...ok, dtype: 'F31' } }, two), FormatError, 'source.x', /not a safetensors dtype/],
    ['integer dtype', handFile({ x: { ...ok, dtype: 'I32' } }, two), FormatError, 'source.x', /I32 is not supported/],
    ['bad shape', handFile({ x: { ...ok, shape: [-2] } }, two), FormatError, 'source.x', /shape must be/],
    ['bad offsets', handFile({ x: { ...ok, data_offsets: [8, 0] } }, two), FormatError, 'source.x', /data_offsets must be/],
    ['offsets past the data', handFile({ x: { ...ok, shape: [3], data_offsets: [0, 12] } }, two), FormatError, 'source.x', /run past the 8 data bytes/],
    ['shape vs byte length', handFile({ x: { ...ok, shape: [3] } }, two), FormatError, 'source.x', /needs 12 bytes/],
    ['overlapping tensors', handFile({ x: ok, y: { ...ok, shape: [1], data_offsets: [4, 8] } }, two), FormatError, 'source.y', /overlap.*"x"/],
    ['metadata not strings', handFile({ __metadata__: { n: 1 }, x: ok }, two), FormatError, 'source.__metadata__', /strings/],
    ['NaN value', handFile({ x: ok }, leBytes([1, NaN])), NonFiniteError, 'source.x', /index 1/],
    ['empty tensor', handFile({ x: { ...ok, shape: [0, 2], data_offsets: [0, 0] } }, two), ShapeError, 'source.x', /no elements/],
  ];
  for (const [what, bytes, type, argument, message] of cases) {
    it(what, async () => {
      const before = engine.memory.allocatedBytes;
      await expectRejects(loadParams(engine, bytes), type, argument, message);
      expect(engine.memory.allocatedBytes).toBe(before);
    });
  }

  it('the hand-written valid file of those cases loads (so each case fails for its own reason)', async () => {
    const loaded = await loadParams(engine, handFile({ __metadata__: { n: '1' }, x: ok }, two));
    expect(Array.from(await loaded.x.read())).toEqual([1, 2]);
    loaded.x.dispose();
  });

  it('bad arguments to saveParams and loadParams', async () => {
    const t = engine.tensor([1], [1]);
    await expectRejects(saveParams(engine, [t] as unknown as Record<string, Tensor>), OptionError, 'params');
    await expectRejects(saveParams(engine, { t: [1] as unknown as Tensor }), OptionError, 'params.t', /Tensor/);
    await expectRejects(saveParams(engine, { __metadata__: t }), OptionError, 'params.__metadata__', /reserved/);
    await expectRejects(saveParams(engine, { t }, { metdata: {} } as never), OptionError, 'options.metdata', /did you mean 'metadata'/);
    await expectRejects(saveParams(engine, { t }, { metadata: { a: 1 } } as never), OptionError, 'options.metadata.a');
    await expectRejects(saveParams(engine, { t }, { transpose: ['u'] }), OptionError, 'options.transpose[0]', /"u"/);
    await expectRejects(saveParams(engine, { t }, { transpose: ['t'] }), ShapeError, 'options.transpose[0]', /2-D/);
    await expectRejects(saveParams({} as Engine, { t }), OptionError, 'engine');
    await expectRejects(loadParams(engine, 42 as unknown as Uint8Array), OptionError, 'source');
    const other = await Engine.create();
    try {
      await expectRejects(saveParams(other, { t }), EngineMismatchError, 'params.t', /another engine/);
    } finally {
      other.destroy();
    }
    t.dispose();
    await expectRejects(saveParams(engine, { t }), DisposedError, 'params.t');
  });
});
