#!/bin/bash
# Build, then the named suites (SUITES, default sdpa) on CUDA; only report.md and the csv of each come back
# under $OUT/<suite>/ (the full output stays in /tmp: the device tool returns a limited number of files).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(which python3) > /tmp/configure.log 2>&1 || { tail -30 /tmp/configure.log; exit 1; }
cmake --build build -j16 > /tmp/build.log 2>&1 || { grep -E "error" /tmp/build.log | head -30; exit 1; }
export PYTHONPATH=$PWD/python
for s in ${SUITES:-sdpa}; do
  timeout ${SUITE_S:-150} python3 -m lightning_core.bench --suite "$s" --device cuda --repeats ${REPEATS:-1} --out "/tmp/rep/$s" 2>&1 | tail -10
  mkdir -p "$OUT/$s"; cp "/tmp/rep/$s/report.md" "/tmp/rep/$s/$s.csv" "$OUT/$s/" 2>/dev/null
done
