#!/bin/bash
# Session 25's last change on the card (written after its device time was spent): the ring GEMV with x in registers
# (LC_GEMV_RING_XREG=1, m = 1, k <= 2048, off by default). test_gemv_cuda (every [n, k] case with it), the
# linear-family tests with transposed weights (ring / ring_xreg / tiles) and the KV-cache / engine tests on the
# card; ring_ab.py at B = 1 with it off / on, GPT-2 and LLaMA; the models suite; the step's stall reasons with it
# on (step_stalls.sh, GPT-2) if time is left. LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
timeout 120 build/test_gemv_cuda > /tmp/gemv.txt 2>&1; log "test_gemv_cuda rc $?: $(tail -1 /tmp/gemv.txt)"
grep -E "FAIL" /tmp/gemv.txt | head -10 | tee -a $S
timeout 100 python3 -m pytest -q tests/python/test_linear_wt.py tests/python/test_norm_linear.py -k "cuda and not cpu" > $OUT/pt_wt.txt 2>&1
log "pytest linear_wt / norm_linear (cuda) rc $?: $(tail -1 $OUT/pt_wt.txt)"; grep -E "^FAILED|^E " $OUT/pt_wt.txt | head -12 | tee -a $S
kv_card_tests
wait
(cd scripts/device && RING_AB_SETTINGS="staged=out_in,LC_GEMV_RING_XREG=0;xreg=out_in,LC_GEMV_RING_XREG=1" RING_AB_BATCHES=1 timeout 120 python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
[ $(left) -gt 150 ] && LC_GEMV_RING_XREG=1 models_suite 140
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
