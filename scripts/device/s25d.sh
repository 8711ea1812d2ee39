#!/bin/bash
# s25c.sh with the fused rope as one out-of-line pass (q rows and tile 0's new keys together, a pair an item,
# cos / sin once a (token, pair)); evict_first stays on (s25c: GPT-2 -4.5%, LLaMA -3.6%). A/B rope fused or not.
# The rope / KV-cache / engine tests, test_gemv_cuda, test_sdpa_cuda on the card; ring_ab.py rope fused or not
# (LLaMA, B = 1 and 4); the CUDA cases of the whole pytest tree; the models suite; the LLaMA timeline.
# LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
kv_card_tests
wait
log "A/B (LLaMA):"; ab "rope=out_in,LC_MODELS_ROPE_FUSE=1;op=out_in,LC_MODELS_ROPE_FUSE=0" 100 /tmp/ll
timeout 120 python3 -m pytest -q tests/python -k "cuda and not cpu" -p no:cacheprovider > $OUT/pytest_cuda.txt 2>&1
log "pytest -k cuda rc $?: $(tail -1 $OUT/pytest_cuda.txt)"; grep -E "^FAILED|^ERROR" $OUT/pytest_cuda.txt | head -12 | tee -a $S
[ $(left) -gt 150 ] && models_suite 140
[ $(left) -gt 110 ] && { log "timeline (LLaMA):"; TL_MODELS=/tmp/ll bash scripts/device/timeline.sh 2>&1 | grep -E "median|per file|_cuda  " | tail -8 | tee -a $S; }
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
