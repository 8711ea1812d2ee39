#!/bin/bash
# Prepared in session 18 for the next GPU session (not run): the [n, k] GEMV per shape and in the models. Build;
# test_gemv_cuda's timing table (its [n, k] column) with the resident grid and with LC_GEMV_NK_GRID=all (one
# block a tile), every test case under both; then layout_ab.py (in_out vs out_in weights) on GPT-2 124M and
# LLaMA 1.1B under both grids. Summary: $OUT/summary.txt.
set -u
. scripts/device/build.sh
S=$OUT/summary.txt; log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s"
(python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1;
 python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1) &
for g in resident all; do
  LC_GEMV_NK_GRID=$g LC_TEST_VERBOSE=1 timeout 150 build/test_gemv_cuda > /tmp/gemv_$g.txt 2>&1
  log "[grid $g] test_gemv_cuda rc $?: $(tail -1 /tmp/gemv_$g.txt)"; sed -n '/^timing/,/^test_gemv_cuda/p' /tmp/gemv_$g.txt | tee -a $S
done
wait
for g in resident all; do LC_GEMV_NK_GRID=$g timeout 200 python3 scripts/device/layout_ab.py /tmp/g2 /tmp/ll 2>&1 | sed "s/^/[grid $g] /" | tee -a $S; done
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
