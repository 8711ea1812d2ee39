#!/bin/bash
# The ring GEMV (gemv_ring_cuda.cu; written in session 23, which got no machine: not yet run on a GPU).
# test_gemv_cuda (every [n, k] case with the ring and the tile kernel) with its timing table; ring_ab.py (GPT-2,
# LLaMA: ring / tiles / in_out); the Python GEMV and engine tests on the card (test_linear_wt runs both kernels);
# ring_ab with LC_PDL_CARVEOUT=100; the models suite with LC_GEMV_RING=1; ring_ab with a 160 KiB ring.
# LIMIT (default 560): seconds the script plans for; AB_B (default 1,4): ring_ab's batch sizes.
set -u
. scripts/device/preamble.sh
LC_TEST_VERBOSE=1 timeout 120 build/test_gemv_cuda > $OUT/gemv_ring.txt 2>&1; log "test_gemv_cuda (ring) rc $?: $(tail -1 $OUT/gemv_ring.txt)"
grep -E "FAIL|differ" $OUT/gemv_ring.txt | head -10 | tee -a $S
sed -n '/^timing/,$p' $OUT/gemv_ring.txt | tee -a $S
wait
[ $(left) -gt 100 ] && (cd scripts/device && RING_AB_BATCHES=${AB_B:-1,4} timeout 150 python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
timeout $(( $(left) - 20 )) python3 -m pytest -q -x tests/python/test_linear_wt.py tests/python/test_norm_linear.py tests/python/test_silu_mul_linear.py tests/python/test_engine.py tests/python/test_generate_cli.py -k "not cpu" > /tmp/pt.txt 2>&1
log "pytest gemv/engine (cuda) rc $?: $(tail -1 /tmp/pt.txt)"; grep -E "^FAILED|^E " /tmp/pt.txt | head -12 | tee -a $S
[ $(left) -gt 120 ] && (log "LC_PDL_CARVEOUT=100:"; cd scripts/device && LC_PDL_CARVEOUT=100 timeout 100 python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
[ $(left) -gt 160 ] && {
t=$(date +%s)
LC_GEMV_RING=1 timeout 130 python3 -m lightning_core.bench --suite models --device cuda --repeats 1 --out /tmp/rep/models > /tmp/models.txt 2>&1
log "suite models rc $? in $(( $(date +%s) - t )) s: $(tail -1 /tmp/models.txt)"
mkdir -p $OUT/models; cp /tmp/rep/models/report.md /tmp/rep/models/summary.json $OUT/models/ 2>/dev/null; }
[ $(left) -gt 60 ] && (log "LC_GEMV_RING_KB=160:"; cd scripts/device && LC_GEMV_RING_KB=160 timeout $(( $(left) - 10 )) python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
