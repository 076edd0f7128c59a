#!/usr/bin/env bash
# The full benchmark on a machine with a GPU and no package registry. Prepare here:
#   npm ci && bash ../shared/tools/pack-gpu-runtime.sh && npx vite build --config bench/vite.config.ts
# then, on the GPU machine, from the project root (with .gpu-runtime/ and bench/dist/ copied over):
#   bash bench/gpu-run.sh OUT_DIR [solvers|backprop|layers|all]
# The solver rows run the contenders beside the engine (TF.js on its WebGPU backend over the same
# Dawn, bundled into bench/dist, and the CPU loop, which skips rows over 2e9 flop per evaluation);
# add --contenders none to the run.mjs lines for the engine alone. Each run also writes an SVG
# chart (chart-*.svg, chart.svg) beside its JSON in OUT_DIR.
set -uo pipefail
out=${1:?usage: bench/gpu-run.sh OUT_DIR [solvers|backprop|layers|all]}
what=${2:-all}
mkdir -p "$out"
source .gpu-runtime/activate.sh
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" 2>&1
if [ "$what" = all ] || [ "$what" = solvers ]; then
  node bench/dist/run.mjs --sizes 256,1024,4096 --batches 1,64,256 --repeats 5 --out "$out" 2>&1 | grep -v XDG_RUNTIME | tee "$out/bench.log"
  node bench/dist/run.mjs --sizes 4096 --batches 1024 --repeats 2 --out "$out" 2>&1 | grep -v XDG_RUNTIME | tee -a "$out/bench.log"
fi
if [ "$what" = all ] || [ "$what" = layers ]; then
  # Layers of several kernels: Broyden's heads against the advance kernel, the MDEQ cell's norm
  # steps against the generic ones (tables on stdout; --no-write: RESULTS.md is this checkout's).
  for batch in 4 16 64; do node bench/dist/norm-chain.mjs --no-write --batch "$batch"; done 2>&1 | grep -v XDG_RUNTIME | tee "$out/layers.log"
  node bench/dist/prefix-head.mjs --no-write 2>&1 | grep -v XDG_RUNTIME | tee -a "$out/layers.log"
  for batch in 4 16; do node bench/dist/stage-tail.mjs --no-write --batch "$batch"; done 2>&1 | grep -v XDG_RUNTIME | tee -a "$out/layers.log"
fi
if [ "$what" = all ] || [ "$what" = backprop ]; then
  node bench/dist/backprop.mjs --golden test/fixtures/golden.json --repeats 5 --out "$out" 2>&1 | grep -v XDG_RUNTIME | tee -a "$out/bench.log"
fi
