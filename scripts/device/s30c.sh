#!/bin/bash
# Session 30's last call: the whole tree on the card with the short-path decode on by default (every C test, GPU ones
# included, and the CUDA cases of the whole pytest tree), then batch 32 on the runner with the short path as the
# default leaves it (off above 4 waves of blocks: LLaMA 1.1B's 1,024 heads), forced (LC_SDPA_DECODE_LEAN=512) and
# off (ring_ab). LIMIT: seconds planned.
set -u
export BUILD_TARGETS="${BUILD_TARGETS-}"
. scripts/device/preamble.sh
(cd build && timeout 150 ctest -j4 --output-on-failure > /tmp/ctest.txt 2>&1); log "ctest rc $?: $(grep -E 'tests passed|tests failed' /tmp/ctest.txt)"
grep -E "Failed|\*\*\*" /tmp/ctest.txt | head -10 | tee -a $S
timeout $(( $(left) - 110 )) python3 -m pytest -q tests/python -k "cuda and not cpu" --durations=10 -p no:cacheprovider > $OUT/pytest_cuda.txt 2>&1
log "pytest -k cuda rc $?: $(tail -1 $OUT/pytest_cuda.txt)"; grep -E "^FAILED|^ERROR" $OUT/pytest_cuda.txt | head -12 | tee -a $S
rm -f $OUT/configure.log $OUT/build.log
wait
[ $(left) -gt 60 ] && AB_BATCHES=32 ab "tc=out_in,LC_SDPA_DECODE_LEAN=0;default=out_in;lean=out_in,LC_SDPA_DECODE_LEAN=512" $(( $(left) - 5 )) "/tmp/g2 /tmp/ll"
log "all $(( $(date +%s) - T0 )) s"
