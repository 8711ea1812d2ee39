#!/bin/sh
# run.sh — builds and runs the host emulation of the tensor-core sdpa kernel (emu.cpp; no GPU needed):
#   scripts/sdpa_mma_emu/run.sh [case|-1] [variant]      (defaults: every case, variant 0)
# Extracts the kernel from src/backend/cuda/sdpa_mma.cuh (from "1 when either 16-bit half" to "Dynamic shared
# memory of a configuration"; PTX-only bits replaced by C), builds into $TMPDIR/sdpa_mma_emu, runs. A case
# whose head_dim has no such variant aborts; run each variant with the cases of its head_dim.
set -e
here=$(cd "$(dirname "$0")" && pwd)
S=${SDPA_MMA_CUH:-$here/../../src/backend/cuda/sdpa_mma.cuh}
out=${TMPDIR:-/tmp}/sdpa_mma_emu
mkdir -p "$out"
{ echo '#include "prims.h"'; sed -n '/^struct lc_sdpa_mma_params/,/^};/p' "$S"; echo '#define SDPA_MMA_FIXUP 1'
  echo 'namespace lc_sdpa_mma {'
  sed -n '/\/\* 1 when either 16-bit half/,/\/\* Dynamic shared memory of a configuration/p' "$S" | sed '$d' |
    sed 's/asm volatile("" : "+l"(step));/asm volatile("" : "+r"(step));/; s/^    asm("{\\n .reg .pred q.*$/    r = c ? a : b;/'
  echo '}'; } > "$out/kern.h"
g++ -std=c++20 -O2 -pthread -w -I"$here" -I"$out" "$here/emu.cpp" -o "$out/emu"
exec "$out/emu" "${1:--1}" "${2:-0}"
