#!/bin/bash
# Session 19, call 2: the tree as it will land. Build; test_gemv_cuda (every case); the Python tests of the
# linear family, the GEMV routing, the engine and the CLI on CUDA; then the models suite (one repeat; report
# under $OUT/models). Summary: $OUT/summary.txt (written as it goes).
set -u
. scripts/device/build.sh
S=$OUT/summary.txt; L=/tmp/s19b; mkdir -p $L
log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s"
for c in LC_GEMV_NK_ORDER=tile; do
  env $c timeout 100 build/test_gemv_cuda > $L/gemv.txt 2>&1; log "[$c] test_gemv_cuda rc $?: $(tail -1 $L/gemv.txt)"
  grep -E "FAIL" $L/gemv.txt | head -6 | tee -a $S
done
timeout 150 python3 -m pytest -q -x tests/python/test_linear_wt.py tests/python/test_norm_linear.py tests/python/test_silu_mul_linear.py \
  tests/python/test_dtype_ops.py tests/python/test_engine.py tests/python/test_generate_cli.py -k "not cpu" > $L/pytest.txt 2>&1
log "pytest rc $?: $(tail -1 $L/pytest.txt)"; grep -E "^FAILED|^ERROR|Error" $L/pytest.txt | head -8 | tee -a $S
log "tests done $(( $(date +%s) - T0 )) s"
timeout 200 python3 -m lightning_core.bench --suite models --device cuda --repeats 1 --out $OUT/models > $L/models.txt 2>&1
log "models suite rc $?"; grep -E "decode|prefill|MISS|met" $L/models.txt | head -30 | tee -a $S
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
