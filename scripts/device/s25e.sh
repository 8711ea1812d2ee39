#!/bin/bash
# The ring GEMV's knobs again under evict_first (s25c-d: on by default): ring_ab.py at B = 1 over the ring's size
# (LC_GEMV_RING_KB), slots (LC_GEMV_RING_SLOTS) and blocks an SM (LC_GEMV_RING_BPS), GPT-2 and LLaMA.
# LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
wait
(cd scripts/device && RING_AB_SETTINGS="default=out_in;kb64=out_in,LC_GEMV_RING_KB=64;kb128=out_in,LC_GEMV_RING_KB=128;s3=out_in,LC_GEMV_RING_SLOTS=3;s6=out_in,LC_GEMV_RING_SLOTS=6;bps1=out_in,LC_GEMV_RING_BPS=1" RING_AB_BATCHES=1 timeout $(( $(left) - 20 )) python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
