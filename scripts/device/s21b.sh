#!/bin/bash
# Session 21, a second call on the warm machine (build/ kept): the GEMV timing table (test_gemv_cuda,
# LC_TEST_VERBOSE=1: m = 1 bf16 from DRAM, the [n, k] column) with the resident grid and with LC_GEMV_NK_GRID=all,
# then the models suite with PF (default 16) MiB of prefetch if not yet run. Summary: $OUT/summary.txt.
set -u
. scripts/device/build.sh
S=$OUT/summary.txt; log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s"
for g in resident all; do
  log "== test_gemv_cuda timing, [n, k] grid $g"
  ( [ $g = all ] && export LC_GEMV_NK_GRID=all; LC_TEST_VERBOSE=1 timeout 150 build/test_gemv_cuda 2>&1 | sed -n '/^timing/,$p' | tee -a $S )
done
[ -n "${SUITE:-}" ] && LC_MODELS_PREFETCH_MB=${PF:-16} timeout 150 python3 -m lightning_core.bench --suite models --device cuda --repeats 1 --out /tmp/rep/models > /tmp/models.txt 2>&1
[ -n "${SUITE:-}" ] && { mkdir -p $OUT/models; cp /tmp/rep/models/report.md /tmp/rep/models/summary.json $OUT/models/ 2>/dev/null; tail -3 /tmp/models.txt | tee -a $S; }
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
