#!/usr/bin/env bash
# Fused Picard against the kernel-per-step path, side by side on one GPU (setup: bench/gpu-run.sh).
set -uo pipefail
out=${1:?usage: bench/gpu-fused.sh OUT_DIR}
mkdir -p "$out"
source .gpu-runtime/activate.sh
for fused in off on; do
  node bench/dist/run.mjs --sizes 32,256,1024 --batches 1,4 --repeats 7 --fused $fused --out "$out" 2>&1 | grep -v XDG_RUNTIME | grep -v "anderson\|broyden" | tee -a "$out/bench.log"
done
