#!/bin/bash
# One block an SM for the small GEMVs only (LC_GEMV_RING_SOLO_MB: those of at most that many MiB of weights), so that
# the next kernel's blocks start beside them and fill their rings early (LLaMA: o_proj 8.4 MB before the 46 MB
# gate_up; qkv 10.5 MB): ring_ab.py at B = 1, GPT-2 and LLaMA, default / 5 / 12 MiB; test_gemv_cuda first.
# LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
timeout 100 build/test_gemv_cuda > /tmp/gemv.txt 2>&1; log "test_gemv_cuda rc $?: $(tail -1 /tmp/gemv.txt)"
wait
(cd scripts/device && RING_AB_SETTINGS="default=out_in;solo5=out_in,LC_GEMV_RING_SOLO_MB=5;solo12=out_in,LC_GEMV_RING_SOLO_MB=12" RING_AB_BATCHES=1 timeout $(( $(left) - 15 )) python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
