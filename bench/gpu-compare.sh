#!/usr/bin/env bash
# Forward-kernel choices side by side on one GPU (see bench/gpu-run.sh for setup):
#   bash bench/gpu-compare.sh OUT_DIR SIZES BATCHES KERNEL...
set -uo pipefail
out=${1:?usage: bench/gpu-compare.sh OUT_DIR SIZES BATCHES KERNEL...}
sizes=$2
batches=$3
shift 3
mkdir -p "$out"
source .gpu-runtime/activate.sh
for kernel in "$@"; do
  node bench/dist/run.mjs --sizes "$sizes" --batches "$batches" --repeats 5 --forward "$kernel" --out "$out" 2>&1 | grep -v XDG_RUNTIME | tee -a "$out/bench.log"
done
