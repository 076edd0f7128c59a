/// <reference types="@webgpu/types" />
// Browser entry for test/browser-harness.test.ts: proves WebGPU compute works in the page by
// doubling a few floats on the GPU and reading them back.

export interface SmokeResult {
  adapter: { vendor: string; architecture: string; description: string; isFallback: boolean };
  input: number[];
  output: number[];
}

const SHADER = /* wgsl */ `
@group(0) @binding(0) var<storage, read_write> data: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  if (id.x < arrayLength(&data)) {
    data[id.x] = 2.0 * data[id.x];
  }
}
`;

export default async function webgpuSmoke(): Promise<SmokeResult> {
  if (!('gpu' in navigator)) throw new Error('navigator.gpu is missing (WebGPU disabled or insecure context)');
  const adapter = await navigator.gpu.requestAdapter();
  if (adapter === null) throw new Error('navigator.gpu.requestAdapter() returned null');
  const device = await adapter.requestDevice();
  try {
    const input = Float32Array.from({ length: 5 }, () => Math.random() * 10 - 5);
    const bytes = input.byteLength;

    const storage = device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    device.queue.writeBuffer(storage, 0, input);
    const readback = device.createBuffer({ size: bytes, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });

    device.pushErrorScope('validation');
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module: device.createShaderModule({ code: SHADER }), entryPoint: 'main' },
    });
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: storage } }],
    });
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(Math.ceil(input.length / 64));
    pass.end();
    encoder.copyBufferToBuffer(storage, 0, readback, 0, bytes);
    device.queue.submit([encoder.finish()]);
    const validation = await device.popErrorScope();
    if (validation !== null) throw new Error(`WebGPU validation error: ${validation.message}`);

    await readback.mapAsync(GPUMapMode.READ);
    const output = new Float32Array(readback.getMappedRange().slice(0));
    readback.unmap();

    const info = adapter.info;
    return {
      adapter: {
        vendor: info.vendor,
        architecture: info.architecture,
        description: info.description,
        isFallback: info.isFallbackAdapter,
      },
      input: Array.from(input),
      output: Array.from(output),
    };
  } finally {
    device.destroy();
  }
}
