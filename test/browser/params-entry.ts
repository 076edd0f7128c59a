/// <reference types="@webgpu/types" />
// Browser entry for test/params.browser.test.ts: saveParams / loadParams on navigator.gpu in
// headless Chromium, through the browser's own Blob and ArrayBuffer (no Node API is bundled).
import { Engine, OptionError, loadParams, paramsMetadata, saveParams } from '../../src';

export interface ParamsBrowserInput {
  w: number[];
  b: number[];
  d: number;
  /** A file written by saveParams in Node, as bytes. */
  fromNode: number[];
}

export interface ParamsBrowserResult {
  /** The bytes saveParams returned in the page. */
  saved: number[];
  fromBlob: { names: string[]; w: number[]; b: number[] };
  fromArrayBuffer: { w: number[] };
  metadata: Record<string, string>;
  intoTransposed: number[];
  fromNode: Record<string, number[]>;
  pathError: { name: string; argument: string } | null;
  uncapturedErrors: string[];
}

export default async function run(input: ParamsBrowserInput): Promise<ParamsBrowserResult> {
  const engine = await Engine.create();
  const uncapturedErrors: string[] = [];
  engine.device.addEventListener('uncapturederror', (event) => uncapturedErrors.push((event as GPUUncapturedErrorEvent).error.message));
  try {
    const { d } = input;
    const w = engine.tensor(input.w, [d, d]);
    const b = engine.tensor(input.b, [d]);
    const saved = await saveParams(engine, { w, b }, { metadata: { page: 'chromium' } });
    // What a download and a re-upload through an <input type=file> give: a Blob.
    const blob = new Blob([saved], { type: 'application/octet-stream' });
    const loaded = await loadParams(engine, blob);
    const buffer = await blob.arrayBuffer();
    const again = await loadParams(engine, buffer);
    const target = engine.zeros([d, d]);
    await loadParams(engine, saved, { into: { w: target }, transpose: ['w'] });
    const nodeTensors = await loadParams(engine, new Blob([Uint8Array.from(input.fromNode)]));
    const fromNode: Record<string, number[]> = {};
    for (const [name, t] of Object.entries(nodeTensors)) fromNode[name] = Array.from(await t.read());
    let pathError: ParamsBrowserResult['pathError'] = null;
    try {
      await loadParams(engine, 'model.safetensors');
    } catch (err) {
      if (!(err instanceof OptionError)) throw err;
      pathError = { name: err.name, argument: err.argument };
    }
    return {
      saved: Array.from(saved),
      fromBlob: { names: Object.keys(loaded), w: Array.from(await loaded.w.read()), b: Array.from(await loaded.b.read()) },
      fromArrayBuffer: { w: Array.from(await again.w.read()) },
      metadata: await paramsMetadata(blob),
      intoTransposed: Array.from(await target.read()),
      fromNode,
      pathError,
      uncapturedErrors,
    };
  } finally {
    engine.destroy();
  }
}
