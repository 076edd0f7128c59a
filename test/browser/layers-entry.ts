/// <reference types="@webgpu/types" />
// Browser entry for test/layers.browser.test.ts: a composed MDEQ-style cell and a defineLayer
// layer solved on navigator.gpu in headless Chromium (Chromium's own WGSL compiler), plus the
// compile error a user gets there for broken WGSL. Inputs come from Node; Node checks the outputs.
import { Engine, ShaderCompileError, add, conv2d, defineLayer, groupNorm, picard, Qd, relu, sequential } from '../../src';

export interface LayersBrowserInput {
  conv: { height: number; width: number; channels: number; weight: number[]; bias: number[]; groups: number; gamma: number[]; beta: number[] };
  convQd: number[];
  batch: number;
  custom: { d: number; a: number[]; qd: number[]; forward: string; adjoint: string };
}

export interface LayersBrowserResult {
  convUStar: number[];
  convTnstep: number;
  customUStar: number[];
  compileError: { name: string; argument: string; message: string } | null;
  uncapturedErrors: string[];
}

export default async function run(input: LayersBrowserInput): Promise<LayersBrowserResult> {
  const engine = await Engine.create();
  const uncapturedErrors: string[] = [];
  engine.device.addEventListener('uncapturederror', (event) => uncapturedErrors.push((event as GPUUncapturedErrorEvent).error.message));
  try {
    const { conv, batch, custom } = input;
    const cell = sequential(
      conv2d(engine, { height: conv.height, width: conv.width, weight: conv.weight, bias: conv.bias, inChannels: conv.channels, outChannels: conv.channels }),
      add(Qd),
      groupNorm(engine, { groups: conv.groups, gamma: conv.gamma, beta: conv.beta }),
      relu(),
    );
    const size = conv.height * conv.width * conv.channels;
    const solved = await picard(cell, engine.tensor(Float32Array.from(input.convQd), [batch, size]), { eps: 0, maxDepth: 4 });
    const layer = await defineLayer(engine, { featureSize: custom.d, params: { a: custom.a }, forward: custom.forward, adjoint: custom.adjoint });
    const viaCustom = await picard(layer, engine.tensor(Float32Array.from(custom.qd), [batch, custom.d]), { eps: 0, maxDepth: 10 });
    let compileError: LayersBrowserResult['compileError'] = null;
    try {
      await defineLayer(engine, { featureSize: custom.d, params: { a: custom.a }, forward: custom.forward.replace('+ injected', '+ + injected'), adjoint: custom.adjoint });
    } catch (err) {
      if (!(err instanceof ShaderCompileError)) throw err;
      compileError = { name: err.name, argument: err.argument, message: err.message };
    }
    return {
      convUStar: Array.from(await solved.uStar.read()),
      convTnstep: solved.tnstep,
      customUStar: Array.from(await viaCustom.uStar.read()),
      compileError,
      uncapturedErrors,
    };
  } finally {
    engine.destroy();
  }
}
