#!/bin/sh
# run_tf32.sh — builds and runs the host emulation of the float32 3xTF32 sdpa kernel (emu_tf32.cpp; no GPU):
#   scripts/sdpa_mma_emu/run_tf32.sh [case|-1] [variant]      (defaults: every case of the variant's head_dim, variant 0)
# Extracts the 16-bit kernel file's shared pieces (as run.sh) and sdpa_tf32.cu's kernel (from "hi/lo split of
# one float32" to its smem_bytes, mma_tf32's PTX replaced by prims_tf32.h), builds into $TMPDIR/sdpa_mma_emu.
set -e
here=$(cd "$(dirname "$0")" && pwd)
S=${SDPA_MMA_CUH:-$here/../../src/backend/cuda/sdpa_mma.cuh}
T=${SDPA_TF32_CU:-$here/../../src/backend/cuda/sdpa_tf32.cu}
out=${TMPDIR:-/tmp}/sdpa_mma_emu
mkdir -p "$out"
{ echo '#include "prims.h"'; echo '#include "prims_tf32.h"'; sed -n '/^struct lc_sdpa_mma_params/,/^};/p' "$S"
  echo '#define SDPA_MMA_FIXUP 1'; echo 'namespace lc_sdpa_mma {'
  sed -n '/\/\* 1 when either 16-bit half/,/\/\* Dynamic shared memory of a configuration/p' "$S" | sed '$d' |
    sed 's/asm volatile("" : "+l"(step));/asm volatile("" : "+r"(step));/; s/^    asm("{\\n .reg .pred q.*$/    r = c ? a : b;/'
  echo '}'; echo 'namespace lc_sdpa_tf32 {'
  echo 'using lc_sdpa_mma::block_tile; using lc_sdpa_mma::cp_async16; using lc_sdpa_mma::cp_commit; using lc_sdpa_mma::cp_wait;'
  echo 'using lc_sdpa_mma::block_key_end; using lc_sdpa_mma::ex2; using lc_sdpa_mma::key_len; using lc_sdpa_mma::smem_u32; using lc_sdpa_mma::write_empty;'
  sed -n '/\/\* hi\/lo split of one float32/,/^__device__ __forceinline__ void mma_tf32/p' "$T" | sed '$d'
  sed -n '/\/\* c += a·b in 3xTF32/,/^template <int D, int BN, int NW, int MT> constexpr size_t smem_bytes/p' "$T" | sed '$d' |
    sed 's/^    extern __shared__ float4 lc_sdpa_tf32_smem\[\];/    float4 *lc_sdpa_tf32_smem = reinterpret_cast<float4 *>(lc_sdpa_mma_smem);/'
  echo '}'; } > "$out/kern_tf32.h"
g++ -std=c++20 -O2 -pthread -w -I"$here" -I"$out" "$here/emu_tf32.cpp" -o "$out/emu_tf32"
exec "$out/emu_tf32" "${1:--1}" "${2:-0}"
