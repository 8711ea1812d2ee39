#!/bin/bash
# Session 30's last check: the short-path decode's default without its batch condition (caches of at most 256 keys
# at any batch; the launch picks a block a head up to 4 waves, a block a kv head above): test_sdpa_cuda, the KV-cache /
# engine / CLI tests on CUDA, and LLaMA 1.1B at batch 32 with it and without (ring_ab). LIMIT: seconds planned.
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C test_sdpa_cuda}"
. scripts/device/preamble.sh
LC_TEST_BENCH=0 timeout 80 build/test_sdpa_cuda > /tmp/sdpa.txt 2>&1; log "test_sdpa_cuda rc $?: $(tail -1 /tmp/sdpa.txt)"
timeout 100 python3 -m pytest -q tests/python/test_kv_cache_rope.py tests/python/test_kv_cache_fused.py tests/python/test_kv_cache.py \
  tests/python/test_engine.py tests/python/test_generate_cli.py -k "not cpu" -p no:cacheprovider > $OUT/pt_kv.txt 2>&1
log "pytest (KV cache, engine, CLI; cuda) rc $?: $(tail -1 $OUT/pt_kv.txt)"; grep -E "^FAILED|^E " $OUT/pt_kv.txt | head -12 | tee -a $S
rm -f $OUT/configure.log $OUT/build.log
wait
[ $(left) -gt 40 ] && AB_BATCHES=32 ab "tc=out_in,LC_SDPA_DECODE_LEAN=0;default=out_in" $(( $(left) - 3 )) "/tmp/ll"
log "all $(( $(date +%s) - T0 )) s"
