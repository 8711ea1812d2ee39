#!/bin/bash
# Session 27's second call: the tensor-core decode's fused-append count awaited at the block's end instead of before
# the first loads (LC_SDPA_DECODE_COUNT=now: the form before), and one block for a short key range instead of splits
# and a merge (LC_SDPA_DECODE_DIRECT=N tiles; default 0 = off in this tree). Correctness under both, stage stamps,
# ring_ab on GPT-2 / LLaMA (32- and 400-token prompts), the sdpa suite. LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
for env in "" "LC_SDPA_DECODE_DIRECT=4" "LC_SDPA_DECODE_COUNT=now"; do
    timeout 60 env $env build/test_sdpa_cuda > /tmp/sdpa.txt 2>&1; log "test_sdpa_cuda [$env] rc $?: $(tail -1 /tmp/sdpa.txt)"
    grep -E "FAIL" /tmp/sdpa.txt | head -5 | tee -a $S
done
for env in "" "LC_SDPA_DECODE_DIRECT=4"; do
    timeout 100 env $env python3 -m pytest -q tests/python/test_kv_cache_rope.py tests/python/test_kv_cache_fused.py tests/python/test_kv_cache.py tests/python/test_engine.py tests/python/test_sdpa.py tests/python/test_generate_cli.py -k "not cpu" -p no:cacheprovider > /tmp/pt.txt 2>&1
    log "pytest kv/engine/sdpa (cuda) [$env] rc $?: $(tail -1 /tmp/pt.txt)"; grep -E "^FAILED|^E " /tmp/pt.txt | head -12 | tee -a $S
done
build_decode_probe
probe_shapes "LC_SDPA_DECODE_COUNT=now" "" "LC_SDPA_DECODE_DIRECT=4"
wait
SET="now=out_in,LC_SDPA_DECODE_COUNT=now;late=out_in;d2=out_in,LC_SDPA_DECODE_DIRECT=2;d8=out_in,LC_SDPA_DECODE_DIRECT=8"
AB_BATCHES=1 ab "$SET" 100 /tmp/g2
AB_BATCHES=1 ab "$SET" 120 /tmp/ll
[ $(left) -gt 150 ] && (cd scripts/device && RING_AB_PROMPT=400 RING_AB_SETTINGS="$SET" RING_AB_BATCHES=1 timeout 110 python3 ring_ab.py /tmp/g2 2>&1 | grep -v Warn | tee -a $S)
if [ $(left) -gt 70 ]; then
    timeout $(( $(left) > 130 ? 110 : $(left) - 15 )) python3 -m lightning_core.bench --suite sdpa --device cuda --repeats 1 --out /tmp/rep/sdpa > /tmp/sdpa_suite.txt 2>&1
    log "suite sdpa rc $?: $(tail -1 /tmp/sdpa_suite.txt)"; cp /tmp/rep/sdpa/report.md $OUT/sdpa_report.md 2>/dev/null
fi
[ $(left) -gt 100 ] && (cd scripts/device && RING_AB_PROMPT=400 RING_AB_SETTINGS="$SET" RING_AB_BATCHES=1 timeout $(( $(left) - 10 )) python3 ring_ab.py /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
