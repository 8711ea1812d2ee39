#!/bin/bash
# A regression sweep on the card after session 24 made the ring GEMV the default [n, k] GEMV (and LLaMA's 16-bit
# CUDA weights out_in): ring_ab.py default / in_out at B = 1, 4 (in_out's [k, n] GEMV now asks for the 100%
# carveout: session 24 measured 1.39 ms a LLaMA step without it, 1.24 with every PDL kernel at 100%); every C test (ctest, GPU ones included), the CUDA cases of the whole pytest tree with the
# slowest listed, the timeline build's view of a decode step (timeline.sh: leaves build/ a timeline build), then
# the lowp suite (its linear rows on transposed weights now run the ring). Session 24 ran only the GEMV /
# model-runner tests on the card. LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
wait
(cd scripts/device && RING_AB_SETTINGS="default=out_in;in_out=in_out" RING_AB_BATCHES=1,4 timeout 90 python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
(cd build && timeout 200 ctest -j4 --output-on-failure > /tmp/ctest.txt 2>&1); log "ctest rc $?: $(grep -E 'tests passed|tests failed' /tmp/ctest.txt)"
grep -E "Failed|\*\*\*" /tmp/ctest.txt | head -10 | tee -a $S
timeout $(( $(left) - 250 )) python3 -m pytest -q tests/python -k "cuda and not cpu" --durations=15 -p no:cacheprovider > $OUT/pytest_cuda.txt 2>&1
log "pytest -k cuda rc $?: $(tail -1 $OUT/pytest_cuda.txt)"; grep -E "^FAILED|^ERROR" $OUT/pytest_cuda.txt | head -12 | tee -a $S
[ $(left) -gt 150 ] && { log "timeline:"; bash scripts/device/timeline.sh 2>&1 | tail -150 | tee -a $S; }
[ $(left) -gt 60 ] && { timeout $(( $(left) - 10 )) python3 -m lightning_core.bench --suite lowp --device cuda --repeats 1 --out /tmp/rep/lowp > /tmp/lowp.txt 2>&1
  log "lowp rc $?: $(tail -1 /tmp/lowp.txt)"; mkdir -p $OUT/lowp; cp /tmp/rep/lowp/report.md $OUT/lowp/ 2>/dev/null; }
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
