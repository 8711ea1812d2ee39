#!/bin/bash
# Build, then scripts/device/decode_graph.py (decode attention device time, graph-replayed). Logs under $OUT.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(which python3) > /tmp/configure.log 2>&1 || { tail -30 /tmp/configure.log; exit 1; }
cmake --build build -j16 > /tmp/build.log 2>&1 || { grep -E "error" /tmp/build.log | head -30; exit 1; }
PYTHONPATH=$PWD/python timeout 100 python3 scripts/device/decode_graph.py 2>&1 | tee "$OUT/decode_graph.txt"
