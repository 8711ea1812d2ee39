#!/bin/bash
# Session 31's first call: the KV-cache / engine / sdpa / GEMV tests on the card; the 16-bit linear through
# cuBLASLt's own epilogue (as the tree then had it: the default for bias, ReLU, + residual as C) under
# the linear tests, and its prefill A/B (linear_lt_ab.py); our decode attention against cuDNN's engine and torch, graph-replayed, over plain
# single-query shapes below the cuDNN rule's 2^17 k/v rows (decode_graph.py, H=32, Hkv=8, D=128, bf16); then the
# sdpa and models suites as time allows. LIMIT: seconds planned.
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C test_sdpa_cuda test_gemv_cuda test_lowp_ops}"
. scripts/device/preamble.sh
kv_card_tests  # preamble.sh
timeout 60 build/test_lowp_ops > $OUT/lowp_lt.txt 2>&1; log "test_lowp_ops rc $?: $(tail -1 $OUT/lowp_lt.txt)"
grep -E "bad|linear path" $OUT/lowp_lt.txt | head -12 | tee -a $S
timeout 120 python3 -m pytest -q -x tests/python/test_dtype_ops.py tests/python/test_ops_linear.py tests/python/test_linear_wt.py \
  tests/python/test_norm_linear.py tests/python/test_silu_mul_linear.py -k "cuda" > $OUT/pt_lt.txt 2>&1
log "pytest linear (cuda) rc $?: $(tail -1 $OUT/pt_lt.txt)"; grep -E "^FAILED|^E " $OUT/pt_lt.txt | head -12 | tee -a $S
t=$(date +%s)
DG_EAGER=1 DG_VARIANTS=default,cudnn DG_SHAPES=1:512,1:1024,1:2048,1:4096,1:8192,2:1024,2:4096,4:1024,4:2048,8:512,8:1024,8:2048,16:512,16:1024 \
  timeout 130 python3 scripts/device/decode_graph.py > $OUT/decode_graph.txt 2>&1
log "decode_graph rc $? in $(( $(date +%s) - t )) s"; grep -v Warn $OUT/decode_graph.txt | tee -a $S
wait
(cd scripts/device && timeout 90 python3 linear_lt_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
if [ $(left) -gt 150 ]; then
  t=$(date +%s); timeout $(( $(left) - 10 )) python3 -m lightning_core.bench --suite sdpa --device cuda --repeats 1 --out $OUT/sdpa > /tmp/sdpa_suite.txt 2>&1
  log "suite sdpa rc $? in $(( $(date +%s) - t )) s: $(tail -1 /tmp/sdpa_suite.txt)"; grep -o "target[^|]*MISS[^|]*" $OUT/sdpa/report.md | sort -u | head -14 | tee -a $S
fi
log "all $(( $(date +%s) - T0 )) s"
