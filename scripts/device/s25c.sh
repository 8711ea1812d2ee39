#!/bin/bash
# The rope fused into the tensor-core decode, its rotation out of line (s25b measured the unrolled form at ~22 us
# an attention), and the ring GEMV's weight copies under L2 evict_first (LC_GEMV_RING_EVICT, default on): the
# rope / KV-cache / engine tests and test_gemv_cuda, test_sdpa_cuda on the card; ring_ab.py over rope fused or
# not x evict_first or not (LLaMA), evict_first or not (GPT-2), B = 1 and 4; the models suite; the LLaMA timeline.
# LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
kv_card_tests
wait
log "A/B (LLaMA):"; ab "rope+ef=out_in,LC_MODELS_ROPE_FUSE=1;op+ef=out_in,LC_MODELS_ROPE_FUSE=0;rope=out_in,LC_MODELS_ROPE_FUSE=1,LC_GEMV_RING_EVICT=0;op=out_in,LC_MODELS_ROPE_FUSE=0,LC_GEMV_RING_EVICT=0" 150 /tmp/ll
log "A/B (GPT-2):"; ab "ef=out_in;no_ef=out_in,LC_GEMV_RING_EVICT=0" 60 /tmp/g2
[ $(left) -gt 150 ] && models_suite 140
[ $(left) -gt 110 ] && { log "timeline (LLaMA):"; TL_MODELS=/tmp/ll bash scripts/device/timeline.sh 2>&1 | grep -E "median|per file|_cuda  " | tail -8 | tee -a $S; }
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
