#!/bin/bash
# Session 29's second call: the cluster merge's closing barrier with a relaxed arrival (LC_SDPA_DECODE_CBAR=relaxed) and
# the partials pushed into the merging blocks (LC_SDPA_DECODE_CMERGE=push), and the short-path decode for the runner's
# caches (LC_SDPA_DECODE_LEAN=512: GPT-2 / LLaMA 1.1B at B=1 through ring_ab, whose graphs hold 256-key caches),
# tested (test_sdpa_cuda, the KV-cache knob tests) and measured (step_ab.py: the sdpa suite's graph-replayed decode
# step; decode_probe with the finer stamps: L0 known, the warps' partials, thread 0's outputs merged), then the models
# suite in what is left (LIMIT: seconds planned; 560 gives it room). Written in session 29, whose second call got no
# machine: the next session's first call.
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C test_sdpa_cuda lightning_core_static}"
. scripts/device/preamble.sh
LC_TEST_BENCH=0 timeout 80 build/test_sdpa_cuda > /tmp/sdpa.txt 2>&1; rc=$?; log "test_sdpa_cuda rc $rc: $(tail -1 /tmp/sdpa.txt)"
grep -E "FAIL|got .* ref" /tmp/sdpa.txt | head -8 | tee -a $S
# the A/B settings: push only when the tests passed (a hang there would hang the measurements too)
AB="base=;relaxed=LC_SDPA_DECODE_CBAR=relaxed"; PR=""
[ $rc -eq 0 ] && { AB="$AB;push=LC_SDPA_DECODE_CMERGE=push"; PR="LC_SDPA_DECODE_CMERGE=push"; }
timeout 70 python3 -m pytest -q tests/python/test_kv_cache_rope.py tests/python/test_kv_cache_fused.py tests/python/test_kv_cache.py \
  -k "cuda or knobs or lean" -p no:cacheprovider > $OUT/pt_kv.txt 2>&1
log "pytest (KV cache; cuda) rc $?: $(tail -1 $OUT/pt_kv.txt)"; grep -E "^FAILED|^E " $OUT/pt_kv.txt | head -16 | tee -a $S
rm -f $OUT/configure.log $OUT/build.log
timeout 60 python3 scripts/device/step_ab.py "$AB" 21 2>&1 | grep -v Warn | tee -a $S
wait  # the random checkpoints
AB_BATCHES=1 ab "base=out_in;lean=out_in,LC_SDPA_DECODE_LEAN=512" 100 "/tmp/g2 /tmp/ll"
build_decode_probe; probe_shapes "" "LC_SDPA_DECODE_CBAR=relaxed" $PR; log "probe done $(( $(date +%s) - T0 )) s"
[ $(left) -gt 105 ] && models_suite $(( $(left) - 5 ))
log "all $(( $(date +%s) - T0 )) s"
