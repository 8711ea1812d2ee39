#!/bin/bash
# End-of-session GPU check: build, the CUDA attention / KV-cache / gelu tests, the C tensor-core attention
# tests, then the sdpa and lowp suites. Logs and reports under $OUT.
set -u
. scripts/device/build.sh
python3 -m pytest -q tests/python/test_sdpa_tf32.py tests/python/test_sdpa.py tests/python/test_sdpa_window.py \
  tests/python/test_sdpa_cudnn.py tests/python/test_kv_cache.py tests/python/test_kv_cache_fused.py -k "cuda or tf32 or cudnn" 2>&1 | tail -6 | tee "$OUT/pytest_sdpa.txt"
python3 -m pytest -q tests/python/test_ops_elementwise.py tests/python/test_dtype_ops.py -k "gelu" 2>&1 | tail -4 | tee "$OUT/pytest_gelu.txt"
(cd build && ./test_sdpa_mma 2>&1 | tail -12 && ./test_sdpa_cuda 2>&1 | tail -3) | tee "$OUT/ctest_sdpa.txt"
echo "tests done $(( $(date +%s) - T0 )) s"
timeout 120 python3 -m lightning_core.bench --suite sdpa --device cuda --repeats 1 --out "$OUT/sdpa" 2>&1 | tail -12
timeout ${LOWP_S:-200} python3 -m lightning_core.bench --suite lowp --device cuda --repeats 1 --out "$OUT/lowp" 2>&1 | tail -12
echo "all $(( $(date +%s) - T0 )) s"
