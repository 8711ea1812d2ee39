#!/bin/bash
# Session 28's first call: test_sdpa_cuda and the CUDA cases of the KV-cache / sdpa / engine / CLI tests (the code as
# landed in session 27, which had not run as such on a card, plus this session's speculative tile 0,
# LC_SDPA_DECODE_SPEC=1), that knob's A/B on
# the runner (ring_ab, B=1), the decode attention's stage stamps at the runner's shapes with each block's chain after
# its own PDL wait (decode_probe.cu), then the models suite in what is left (GPT-2 B=32 on the landed code: session 27
# measured 0.665 ms only with decode_tile_append.patch, now retired). Written in session 28, whose calls got no
# machine. LIMIT: seconds planned.
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C test_sdpa_cuda lightning_core_static}"
. scripts/device/preamble.sh
LC_TEST_BENCH=0 timeout 90 build/test_sdpa_cuda > /tmp/sdpa.txt 2>&1; log "test_sdpa_cuda rc $?: $(tail -1 /tmp/sdpa.txt)"
grep -E "FAIL|got .* ref" /tmp/sdpa.txt | head -8 | tee -a $S
timeout 150 python3 -m pytest -q tests/python/test_kv_cache_rope.py tests/python/test_kv_cache_fused.py tests/python/test_kv_cache.py \
  tests/python/test_sdpa.py tests/python/test_norm_linear_argmax.py tests/python/test_engine.py tests/python/test_generate_cli.py \
  -k "cuda or speculative or knobs" -p no:cacheprovider > $OUT/pt_all.txt 2>&1
log "pytest (KV cache, sdpa, argmax, engine, CLI; cuda) rc $?: $(tail -1 $OUT/pt_all.txt)"; grep -E "^FAILED|^E " $OUT/pt_all.txt | head -16 | tee -a $S
wait
log "tests $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
AB_BATCHES=1 ab "base=out_in;spec=out_in,LC_SDPA_DECODE_SPEC=1" 100 "/tmp/g2 /tmp/ll"
[ $(left) -gt 150 ] && { build_decode_probe; probe_shapes "" "LC_SDPA_DECODE_SPEC=1"; log "probe done $(( $(date +%s) - T0 )) s"; }
[ $(left) -gt 105 ] && models_suite $(( $(left) - 5 ))
log "all $(( $(date +%s) - T0 )) s"
