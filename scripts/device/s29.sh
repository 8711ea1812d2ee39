#!/bin/bash
# Session 29's first call: the CUDA tests of the decode attention and the KV cache (the code as landed in session 27,
# never run as such on a card, plus session 28's speculative tile 0, LC_SDPA_DECODE_SPEC=1, and this session's form
# for every split, =2), the sdpa suite's graph-replayed decode step under both (step_ab.py: issue 15's <= 12 us
# target), the knobs' A/B on the runner (ring_ab, B=1), the decode attention's stage stamps (decode_probe.cu), then
# the models suite in what is left. LIMIT: seconds planned.
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C test_sdpa_cuda lightning_core_static}"
. scripts/device/preamble.sh
LC_TEST_BENCH=0 timeout 90 build/test_sdpa_cuda > /tmp/sdpa.txt 2>&1; log "test_sdpa_cuda rc $?: $(tail -1 /tmp/sdpa.txt)"
grep -E "FAIL|got .* ref" /tmp/sdpa.txt | head -8 | tee -a $S
timeout 150 python3 -m pytest -q tests/python/test_kv_cache_rope.py tests/python/test_kv_cache_fused.py tests/python/test_kv_cache.py \
  tests/python/test_sdpa.py tests/python/test_norm_linear_argmax.py tests/python/test_engine.py tests/python/test_generate_cli.py \
  -k "cuda or speculative or knobs" -p no:cacheprovider > $OUT/pt_all.txt 2>&1
log "pytest (KV cache, sdpa, argmax, engine, CLI; cuda) rc $?: $(tail -1 $OUT/pt_all.txt)"; grep -E "^FAILED|^E " $OUT/pt_all.txt | head -16 | tee -a $S
log "tests $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
timeout 60 python3 scripts/device/step_ab.py "base=;spec1=LC_SDPA_DECODE_SPEC=1;spec2=LC_SDPA_DECODE_SPEC=2" 15 2>&1 | grep -v Warn | tee -a $S
wait
AB_BATCHES=1 ab "base=out_in;spec=out_in,LC_SDPA_DECODE_SPEC=1;spec2=out_in,LC_SDPA_DECODE_SPEC=2" 120 "/tmp/g2 /tmp/ll"
[ $(left) -gt 150 ] && { build_decode_probe; probe_shapes "" "LC_SDPA_DECODE_SPEC=1" "LC_SDPA_DECODE_SPEC=2"; log "probe done $(( $(date +%s) - T0 )) s"; }
[ $(left) -gt 105 ] && models_suite $(( $(left) - 5 ))
log "all $(( $(date +%s) - T0 )) s"
