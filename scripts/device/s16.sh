#!/bin/bash
# Session 16's first GPU run: build; the CUDA sdpa test on the tree as committed (merge-mode checks and the
# forced cluster sizes); the Python GPU tests of the KV cache, the engine and the 3xTF32 path; then the A/B of
# the parameters-in-shared-memory patch (ab_multi.sh; the patch has since been split: gemv_params_smem.patch
# and the decode part, which no longer applies). Logs under $OUT.
set -u
. scripts/device/build.sh
LC_TEST_BENCH=0 timeout 200 build/test_sdpa_cuda > "$OUT/test_sdpa_cuda.txt" 2>&1; echo "test_sdpa_cuda rc $? ($(( $(date +%s) - T0 )) s)"
grep -iE "fail" "$OUT/test_sdpa_cuda.txt" | head -20; tail -2 "$OUT/test_sdpa_cuda.txt"
timeout 120 python3 -m pytest -q -x tests/python/test_kv_cache.py tests/python/test_kv_cache_fused.py \
  tests/python/test_engine.py tests/python/test_sdpa_tf32.py > "$OUT/pytest_gpu.txt" 2>&1
echo "pytest rc $? ($(( $(date +%s) - T0 )) s)"; grep -E "FAIL|Error|passed|failed" "$OUT/pytest_gpu.txt" | tail -15
bash scripts/device/ab_multi.sh scripts/device/gemv_params_smem.patch
