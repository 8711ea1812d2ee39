#!/bin/bash
# Session 17, GPU call 3 (the tree to land): build; the CUDA elementwise tests (the 16-bit gelu on the full-grid
# pipelined kernel); the bf16 gelu against torch; then the models, lowp and sdpa suites (report.md and summary.json of
# each under $OUT/<suite>/) and decode attention graph-replayed. Summary: $OUT/summary.txt.
set -u
. scripts/device/build.sh
S=$OUT/summary.txt; L=/tmp/s17c; mkdir -p $L
log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s"
(LC_TEST_BENCH=0 timeout 200 build/test_lowp_ops > $L/test_lowp_ops.txt 2>&1; echo "rc $?" >> $L/test_lowp_ops.txt) &
timeout 120 python3 -m pytest -q tests/python/test_ops_elementwise.py -k "not cpu" > $L/pytest.txt 2>&1
log "pytest rc $?: $(tail -1 $L/pytest.txt)"; grep -E "^FAILED|^ERROR" $L/pytest.txt | head -10 | tee -a $S
wait; log "test_lowp_ops $(grep -E 'passed|failed' $L/test_lowp_ops.txt | tail -1) $(tail -1 $L/test_lowp_ops.txt)"
log "[gelu] $(timeout 60 python3 scripts/device/gelu_ab.py 2>&1 | tail -1)"
for s in models lowp sdpa; do
  t=$(date +%s)
  timeout ${SUITE_S:-200} python3 -m lightning_core.bench --suite $s --device cuda --repeats 1 --out /tmp/rep/$s > $L/$s.txt 2>&1
  log "suite $s rc $? in $(( $(date +%s) - t )) s: $(tail -1 $L/$s.txt)"
  mkdir -p $OUT/$s; cp /tmp/rep/$s/report.md /tmp/rep/$s/summary.json $OUT/$s/ 2>/dev/null
done
DG_VARIANTS=default,cudnn timeout 60 python3 scripts/device/decode_graph.py 2>&1 | tee -a $S
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log  # the few files a call brings back
