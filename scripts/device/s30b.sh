#!/bin/bash
# Session 30's third call: the short-path decode a block a head (GQA groups too; its passes pipelined) and on by
# default for caches of at most 256 keys (LC_SDPA_DECODE_LEAN=0: off), tested (test_sdpa_cuda, the KV-cache, engine
# and CLI tests on CUDA), swept against the tensor-core decode by cache length (lean_sweep.py: base, a block a head, a
# block a kv head), the runner's step with and without it (ring_ab, B=1 and 4), then the models suite in what is left.
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C test_sdpa_cuda}"
. scripts/device/preamble.sh
LC_TEST_BENCH=0 timeout 80 build/test_sdpa_cuda > /tmp/sdpa.txt 2>&1; log "test_sdpa_cuda rc $?: $(tail -1 /tmp/sdpa.txt)"
grep -E "FAIL|got .* ref|expected" /tmp/sdpa.txt | head -8 | tee -a $S
timeout 130 python3 -m pytest -q tests/python/test_kv_cache_rope.py tests/python/test_kv_cache_fused.py tests/python/test_kv_cache.py \
  tests/python/test_engine.py tests/python/test_generate_cli.py tests/python/test_sdpa.py -k "not cpu" -p no:cacheprovider > $OUT/pt_kv.txt 2>&1
log "pytest (KV cache, engine, CLI, sdpa; cuda) rc $?: $(tail -1 $OUT/pt_kv.txt)"; grep -E "^FAILED|^E " $OUT/pt_kv.txt | head -16 | tee -a $S
rm -f $OUT/configure.log $OUT/build.log
timeout 120 python3 scripts/device/lean_sweep.py 9 2>&1 | grep -v Warn | tee -a $S
wait  # the random checkpoints
AB_BATCHES=1,4 ab "tc=out_in,LC_SDPA_DECODE_LEAN=0;default=out_in" 130 "/tmp/g2 /tmp/ll"
log "ab done $(( $(date +%s) - T0 )) s"
[ $(left) -gt 110 ] && models_suite $(( $(left) - 5 ))
log "all $(( $(date +%s) - T0 )) s"
