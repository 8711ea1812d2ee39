#!/bin/bash
# Stage timing of the tensor-core decode (scripts/device/decode_probe.cu): builds the probe with the kernel's
# -DSDM_PROBE stamps against build/ (build.sh first if needed). Logs under $OUT.
set -u
[ -f build/liblightning_core_static.a ] || . scripts/device/build.sh
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
BLAS=$(sed -n 's/^LC_BLAS_LIBRARY:FILEPATH=//p' build/CMakeCache.txt)
nvcc -O3 -std=c++17 -arch=sm_90 -DSDM_PROBE -I src -I include -o build/decode_probe scripts/device/decode_probe.cu \
  src/backend/cuda/sdpa_decode_mma_cuda.cu build/liblightning_core_static.a \
  -Xlinker --allow-multiple-definition -lcublasLt -ldl -lpthread -lm ${BLAS:+$BLAS -Xlinker -rpath=$(dirname "$BLAS")} \
  > "$OUT/probe_build.log" 2>&1 || { tail -20 "$OUT/probe_build.log"; exit 1; }
for cfg in "1 1024" "1 1024 32 8 128 1000" "1 4096" "8 1024" "1 1024 12 12 64 48 1"; do
  for env in "" "LC_SDPA_DECODE_CLUSTER=0" "LC_SDPA_DECODE_CLUSTER=0 LC_SDPA_DECODE_FOLD=0"; do
    echo "== ${env:-default}"; env $env build/decode_probe $cfg
  done
done 2>&1 | tee "$OUT/probe.txt"
