#!/bin/bash
# Session 26 on the card: (1) the ring GEMV with x in registers (LC_GEMV_RING_XREG=1, m = 1, k <= 2048, off by
# default; written in session 25 after its device time was spent) and (2) the argmax folded into the final norm +
# lm_head GEMV (argmax_out=, LC_MODELS_ARGMAX_FUSE, on by default): their tests on the card (test_gemv_cuda with
# every [n, k] case in both forms, the linear-family tests with transposed weights, test_norm_linear_argmax, the
# fused step's test, the KV-cache / engine tests), then ring_ab.py at B = 1 with fold off / on / on + xreg, GPT-2 and
# LLaMA, and the models suite as landed. LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
timeout 150 python3 -m pytest -q tests/python/test_linear_wt.py tests/python/test_norm_linear.py tests/python/test_norm_linear_argmax.py tests/python/test_decode_program.py -k "cuda and not cpu" > $OUT/pt_wt.txt 2>&1
log "pytest linear_wt / norm_linear / argmax / decode_program (cuda) rc $?: $(tail -1 $OUT/pt_wt.txt)"; grep -E "^FAILED|^E " $OUT/pt_wt.txt | head -16 | tee -a $S
kv_card_tests
grep -E "FAIL" /tmp/gemv.txt | head -10 | tee -a $S
wait
(cd scripts/device && RING_AB_SETTINGS="base=out_in,LC_MODELS_ARGMAX_FUSE=0,LC_GEMV_RING_XREG=0;fold=out_in,LC_MODELS_ARGMAX_FUSE=1,LC_GEMV_RING_XREG=0;fold_xreg=out_in,LC_MODELS_ARGMAX_FUSE=1,LC_GEMV_RING_XREG=1" RING_AB_BATCHES=1 timeout 150 python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
[ $(left) -gt 130 ] && models_suite $(( $(left) - 10 ))
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
