#!/bin/bash
# Build, test_sdpa_cuda (every decode merge mode against float64; its decode bench) and
# scripts/device/decode_graph.py (decode attention device time, graph-replayed). Logs under $OUT.
set -u
. scripts/device/build.sh
timeout 240 build/test_sdpa_cuda > "$OUT/test_sdpa_cuda.txt" 2>&1; echo "test_sdpa_cuda rc $?"
grep -E "FAIL|fail|bench|B=|mma\+|simt " "$OUT/test_sdpa_cuda.txt" | head -40; tail -2 "$OUT/test_sdpa_cuda.txt"
timeout 120 python3 scripts/device/decode_graph.py 2>&1 | tee "$OUT/decode_graph.txt"
