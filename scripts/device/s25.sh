#!/bin/bash
# Session 25's first call. (1) The ring GEMV's room form (LC_GEMV_RING_ROOM=1, written in session 24 after its
# device time ran out: never run on a GPU): test_gemv_cuda runs every [n, k] case in it (and the other forms),
# its timing table has a room column; ring_ab.py decode A/B at B=1 (default / room / in_out) and with
# LC_PDL_CARVEOUT=100. If room wins, flip GR_ROOM and record it. (2) The regression sweep after session 24 made
# the ring the default [n, k] GEMV (and LLaMA's CUDA weights out_in): every C test (ctest, GPU ones included),
# the CUDA cases of the whole pytest tree with the slowest listed, the lowp suite. LIMIT (default 560).
set -u
. scripts/device/preamble.sh
LC_TEST_VERBOSE=1 timeout 120 build/test_gemv_cuda > $OUT/gemv.txt 2>&1; log "test_gemv_cuda rc $?: $(tail -1 $OUT/gemv.txt)"
grep -E "FAIL|differ" $OUT/gemv.txt | head -10 | tee -a $S
sed -n '/^timing/,$p' $OUT/gemv.txt | awk '{print $1, "tiles", $(NF-8), "ring", $(NF-5), "room", $(NF-2)}' | tee -a $S
wait
ab() { (cd scripts/device && RING_AB_SETTINGS="$1" RING_AB_BATCHES=1 timeout $2 python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S); }
ab "default=out_in;room=out_in,LC_GEMV_RING_ROOM=1;in_out=in_out" 90
(LC_PDL_CARVEOUT=100; export LC_PDL_CARVEOUT; log "LC_PDL_CARVEOUT=100:"; ab "default=out_in;room=out_in,LC_GEMV_RING_ROOM=1" 60)
(cd build && timeout 200 ctest -j4 --output-on-failure > /tmp/ctest.txt 2>&1); log "ctest rc $?: $(grep -E 'tests passed|tests failed' /tmp/ctest.txt)"
grep -E "Failed|\*\*\*" /tmp/ctest.txt | head -10 | tee -a $S
[ $(left) -gt 90 ] && { timeout $(( $(left) - 60 )) python3 -m pytest -q tests/python -k "cuda and not cpu" --durations=15 -p no:cacheprovider > $OUT/pytest_cuda.txt 2>&1
  log "pytest -k cuda rc $?: $(tail -1 $OUT/pytest_cuda.txt)"; grep -E "^FAILED|^ERROR" $OUT/pytest_cuda.txt | head -12 | tee -a $S; }
[ $(left) -gt 50 ] && { timeout $(( $(left) - 10 )) python3 -m lightning_core.bench --suite lowp --device cuda --repeats 1 --out /tmp/rep/lowp > /tmp/lowp.txt 2>&1
  log "lowp rc $?: $(tail -1 /tmp/lowp.txt)"; mkdir -p $OUT/lowp; cp /tmp/rep/lowp/report.md $OUT/lowp/ 2>/dev/null; }
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
