#!/bin/bash
# The rope fused into the tensor-core decode (KVCache.attention(positions=...), the LLaMA decode step's default):
# its tests and the KV-cache / rope / engine tests on the card, test_sdpa_cuda; ring_ab.py rope fused against the
# rope op first (LC_MODELS_ROPE_FUSE=0), B = 1 and 4, LLaMA then GPT-2 (unaffected: a control); the models
# suite (report under $OUT/models); the timeline of a LLaMA step. LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
timeout 100 python3 -m pytest -q tests/python/test_kv_cache_rope.py tests/python/test_kv_cache_fused.py tests/python/test_kv_cache.py tests/python/test_ops_llm.py tests/python/test_engine.py tests/python/test_tp.py tests/python/test_generate_cli.py -k "not cpu" > $OUT/pt_rope.txt 2>&1
log "pytest rope/kv/engine (cuda) rc $?: $(tail -1 $OUT/pt_rope.txt)"; grep -E "^FAILED|^E " $OUT/pt_rope.txt | head -16 | tee -a $S
timeout 60 build/test_sdpa_cuda > /tmp/sdpa.txt 2>&1; log "test_sdpa_cuda rc $?: $(tail -1 /tmp/sdpa.txt)"
wait
log "rope A/B:"; ab "fused=out_in,LC_MODELS_ROPE_FUSE=1;rope_op=out_in,LC_MODELS_ROPE_FUSE=0" 100 "/tmp/ll /tmp/g2"
[ $(left) -gt 150 ] && models_suite 140
[ $(left) -gt 110 ] && { log "timeline (LLaMA):"; TL_MODELS=/tmp/ll bash scripts/device/timeline.sh 2>&1 | grep -A200 "^/tmp/ll" | grep -E "median|per file|_cuda  " | tail -8 | tee -a $S; }
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
