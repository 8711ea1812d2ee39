#!/bin/bash
# Sourced by the scripts here: OUT set up, the GPU named, the tree configured and built into build/ (logs
# under $OUT; BUILD_TARGETS: only those cmake targets), PYTHONPATH set to the package. Stops the calling script on a
# build failure.
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
T0=$(date +%s)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(which python3) > "$OUT/configure.log" 2>&1 || { tail -30 "$OUT/configure.log"; exit 1; }
cmake --build build -j16 ${BUILD_TARGETS:+--target $BUILD_TARGETS} > "$OUT/build.log" 2>&1 || { grep -E "error" "$OUT/build.log" | head -30; exit 1; }
echo "build $(( $(date +%s) - T0 )) s"
export PYTHONPATH=$PWD/python
