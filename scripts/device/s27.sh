#!/bin/bash
# Session 27's first call: the CUDA tests that have not run on a card since session 26's last call (the engine's
# fold knobs, the embedding with positions and kv_append after the op table's shape-rule mend), the decode
# attention's stage stamps at the model runner's shapes (GPT-2: H 12, MHA, D 64, 48 keys; LLaMA 1.1B: H 32, Hkv 4,
# D 64, 64 keys, with and without the fused rope) and at issue 15's B=1 1k shape, the sdpa suite (its report back
# this time), then the whole tree's CUDA tests in what is left. LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
timeout 150 python3 -m pytest -q tests/python/test_ops_index.py tests/python/test_norm_linear_argmax.py -k "cuda and not cpu" > $OUT/pt_new.txt 2>&1
log "pytest index / argmax (cuda) rc $?: $(tail -1 $OUT/pt_new.txt)"; grep -E "^FAILED|^E " $OUT/pt_new.txt | head -16 | tee -a $S
kv_card_tests
grep -E "FAIL" /tmp/gemv.txt | head -10 | tee -a $S
build_decode_probe
for cfg in "1 1024 12 12 64 48 1" "1 2048 32 4 64 64 1 0" "1 2048 32 4 64 64 1 1" "1 1024 32 8 128 1000 1" "1 1024"; do
  for env in "" "LC_SDPA_DECODE_CLUSTER=0"; do echo "== ${env:-default}"; timeout 20 env $env build/decode_probe $cfg; done
done > $OUT/probe.txt 2>&1
log "probe done: $(grep -c blocks $OUT/probe.txt) configs"
wait
if [ $(left) -gt 120 ]; then
    timeout $(( $(left) > 200 ? 110 : $(left) - 60 )) python3 -m lightning_core.bench --suite sdpa --device cuda --repeats 1 --out /tmp/rep/sdpa > /tmp/sdpa_suite.txt 2>&1
    log "suite sdpa rc $?: $(tail -1 /tmp/sdpa_suite.txt)"; cp /tmp/rep/sdpa/report.md $OUT/sdpa_report.md 2>/dev/null
fi
if [ $(left) -gt 60 ]; then
    timeout $(( $(left) - 15 )) python3 -m pytest -q tests/python -k "cuda" -p no:cacheprovider > $OUT/pt_all.txt 2>&1
    log "pytest -k cuda (whole tree) rc $?: $(tail -1 $OUT/pt_all.txt)"; grep -E "^FAILED|^E " $OUT/pt_all.txt | head -16 | tee -a $S
fi
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
