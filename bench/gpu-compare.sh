#!/usr/bin/env bash
# Tiled against split-k forward kernels, side by side on one GPU (see bench/gpu-run.sh for setup).
set -uo pipefail
out=${1:?usage: bench/gpu-compare.sh OUT_DIR}
mkdir -p "$out"
source .gpu-runtime/activate.sh
for kernel in tiled auto; do
  node bench/dist/run.mjs --sizes 256,1024,4096 --batches 1,64 --repeats 5 --forward $kernel --out "$out" 2>&1 | grep -v XDG_RUNTIME | tee -a "$out/bench.log"
done
