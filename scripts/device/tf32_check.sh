#!/bin/bash
# Device check of the float32 tensor-core attention (sdpa_tf32.cu): build, the tf32 tests, the float32 CUDA
# sdpa tests, the C tensor-core test, then the A/B probe scripts/device/f32_sdpa.py. Logs under $OUT.
set -u
. scripts/device/build.sh
python3 -m pytest -q -x tests/python/test_sdpa_tf32.py 2>&1 | tail -25 | tee "$OUT/pytest_tf32.txt"
python3 -m pytest -q tests/python/test_sdpa.py tests/python/test_sdpa_window.py tests/python/test_kv_cache.py -k "cuda and float32" 2>&1 | tail -8 | tee "$OUT/pytest_f32.txt"
(cd build && ./test_sdpa_mma 2>&1 | tail -12) | tee "$OUT/test_sdpa_mma.txt"
echo "tests done $(( $(date +%s) - T0 )) s"
timeout ${PROBE_S:-300} python3 scripts/device/f32_sdpa.py ${SEQS:-1024 4096} 2>&1 | tee "$OUT/f32_sdpa.txt"
echo "all $(( $(date +%s) - T0 )) s"
