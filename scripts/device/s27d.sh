#!/bin/bash
# Session 27's fourth call: GPT-2 B=32 decode was 8% slower in the third call's models suite (0.6645 against session
# 26's 0.6118 ms). A/B of the decode kernel's __launch_bounds__(128, 2) against (128) (branch lbrev, built in /tmp/p)
# in alternating processes, and of the append / count knobs in one process (ring_ab), GPT-2 B=1 and 32.
set -u
REV=lbrev . scripts/device/ab_tree.sh
S=$OUT/summary.txt; log() { echo "$*" | tee -a $S; }
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
wait; log "gpu $(cat $OUT/gpu.txt); /tmp/p: $(tail -1 /tmp/p_build.log); $(( $(date +%s) - T0 )) s"
for r in 1 2; do
    TREE_MS_BATCHES=32 TREE_MS_LABEL=bounds128x2 PYTHONPATH=$ROOT/python timeout 40 python3 scripts/device/tree_ms.py /tmp/g2 2>&1 | grep ms/step | tee -a $S
    TREE_MS_BATCHES=32 TREE_MS_LABEL=bounds128 PYTHONPATH=/tmp/p/python timeout 40 python3 scripts/device/tree_ms.py /tmp/g2 2>&1 | grep ms/step | tee -a $S
done
(cd scripts/device && RING_AB_SETTINGS="before=out_in,LC_SDPA_DECODE_COUNT=now,LC_SDPA_DECODE_APPEND=early,LC_SDPA_DECODE_DIRECT=0;landed=out_in" RING_AB_BATCHES=32 timeout 60 python3 ring_ab.py /tmp/g2 2>&1 | grep -v Warn | tee -a $S)
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
