#!/bin/bash
# Session 26's second call: GPT-2's token + position lookups as one op (lc.embedding(pos_weight=, positions=),
# LC_MODELS_EMBED_FUSE, on by default) and the tests of the argmax fold after their fix; ring_ab.py B=1, GPT-2
# with the embedding fold off / on and the SIMT decode attention (LC_SDPA_DECODE=simt); the models suite as landed;
# then, in what is left, LLaMA with the SIMT attention and fewer, longer key splits (LC_SDPA_DECODE_MINTILES=4), the
# whole CUDA test selection (pytest -k cuda) and the sdpa / lowp suites. LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
timeout 150 python3 -m pytest -q tests/python/test_ops_index.py tests/python/test_norm_linear_argmax.py tests/python/test_linear_wt.py tests/python/test_norm_linear.py tests/python/test_decode_program.py -k "cuda and not cpu" > $OUT/pt_new.txt 2>&1
log "pytest index / argmax / linear_wt / norm_linear / decode_program (cuda) rc $?: $(tail -1 $OUT/pt_new.txt)"; grep -E "^FAILED|^E " $OUT/pt_new.txt | head -16 | tee -a $S
kv_card_tests
grep -E "FAIL" /tmp/gemv.txt | head -10 | tee -a $S
wait
(cd scripts/device && RING_AB_SETTINGS="embed_off=out_in,LC_MODELS_EMBED_FUSE=0;embed_on=out_in,LC_MODELS_EMBED_FUSE=1;simt=out_in,LC_SDPA_DECODE=simt" RING_AB_BATCHES=1 timeout 80 python3 ring_ab.py /tmp/g2 2>&1 | grep -v Warn | tee -a $S)
[ $(left) -gt 100 ] && models_suite 95
[ $(left) -gt 110 ] && (cd scripts/device && RING_AB_SETTINGS="default=out_in;simt=out_in,LC_SDPA_DECODE=simt;mintiles4=out_in,LC_SDPA_DECODE_MINTILES=4" RING_AB_BATCHES=1 timeout 90 python3 ring_ab.py /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
if [ $(left) -gt 60 ]; then
    timeout $(( $(left) > 250 ? 220 : $(left) - 15 )) python3 -m pytest -q tests/python -k "cuda" -p no:cacheprovider > $OUT/pt_all.txt 2>&1
    log "pytest -k cuda (whole tree) rc $?: $(tail -1 $OUT/pt_all.txt)"; grep -E "^FAILED|^E " $OUT/pt_all.txt | head -16 | tee -a $S
fi
# the lowp and sdpa suites (issues 14 and 15's rows) in what is left, one repeat each
for suite in sdpa lowp; do
    [ $(left) -gt 60 ] || break
    timeout $(( $(left) - 10 )) python3 -m lightning_core.bench --suite $suite --device cuda --repeats 1 --out /tmp/rep/$suite > /tmp/$suite.txt 2>&1
    log "suite $suite rc $?: $(tail -1 /tmp/$suite.txt)"; mkdir -p $OUT/$suite; cp /tmp/rep/$suite/report.md /tmp/rep/$suite/summary.json $OUT/$suite/ 2>/dev/null
done
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
