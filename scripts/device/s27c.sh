#!/bin/bash
# Session 27's third call: the landed decode forms (one block for keys spanning <= 2 tiles, LC_SDPA_DECODE_DIRECT=2;
# the fused append's rows written from the landed tiles, LC_SDPA_DECODE_APPEND=early for the form before; the count
# awaited at the block's end; __launch_bounds__(128, 2)): the CUDA tests, stage stamps, ring_ab against the form
# before on GPT-2 / LLaMA, the models suite, then the whole tree's CUDA tests in what is left. LIMIT: seconds planned.
set -u
. scripts/device/preamble.sh
timeout 60 build/test_sdpa_cuda > /tmp/sdpa.txt 2>&1; log "test_sdpa_cuda rc $?: $(tail -1 /tmp/sdpa.txt)"; grep FAIL /tmp/sdpa.txt | head -5 | tee -a $S
timeout 120 python3 -m pytest -q tests/python/test_kv_cache_rope.py tests/python/test_kv_cache_fused.py tests/python/test_kv_cache.py tests/python/test_ops_llm.py tests/python/test_engine.py tests/python/test_tp.py tests/python/test_generate_cli.py tests/python/test_sdpa.py tests/python/test_decode_program.py -k "not cpu" -p no:cacheprovider > $OUT/pt_kv.txt 2>&1
log "pytest kv/rope/engine/sdpa (cuda) rc $?: $(tail -1 $OUT/pt_kv.txt)"; grep -E "^FAILED|^E " $OUT/pt_kv.txt | head -12 | tee -a $S
build_decode_probe
probe_shapes "LC_SDPA_DECODE_APPEND=early LC_SDPA_DECODE_DIRECT=0" "LC_SDPA_DECODE_DIRECT=0" ""
wait
SET="before=out_in,LC_SDPA_DECODE_COUNT=now,LC_SDPA_DECODE_APPEND=early,LC_SDPA_DECODE_DIRECT=0;d0=out_in,LC_SDPA_DECODE_DIRECT=0;landed=out_in"
AB_BATCHES=1 ab "$SET" 90 /tmp/g2
AB_BATCHES=1 ab "$SET" 100 /tmp/ll
[ $(left) -gt 110 ] && models_suite 100
if [ $(left) -gt 50 ]; then
    timeout $(( $(left) - 10 )) python3 -m pytest -q tests/python -k "cuda" -p no:cacheprovider > $OUT/pt_all.txt 2>&1
    log "pytest -k cuda (whole tree) rc $?: $(tail -1 $OUT/pt_all.txt)"; grep -E "^FAILED|^E " $OUT/pt_all.txt | head -16 | tee -a $S
fi
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
