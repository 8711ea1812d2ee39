#!/bin/bash
# A first call for session 28 (written in session 27, whose device time ran out): the models suite on the code as
# landed (session 27's figures for it are ring_ab's), the CUDA tests of the whole tree, then the question session 27
# left (GPT-2 B=32 with decode_tile_append.patch: s27d.sh's A/B, in what is left). LIMIT: seconds planned.
set -u
. scripts/device/preamble.sh
timeout 60 build/test_sdpa_cuda > /tmp/sdpa.txt 2>&1; log "test_sdpa_cuda rc $?: $(tail -1 /tmp/sdpa.txt)"
wait
models_suite 100
timeout 200 python3 -m pytest -q tests/python -k "cuda" -p no:cacheprovider > $OUT/pt_all.txt 2>&1
log "pytest -k cuda (whole tree) rc $?: $(tail -1 $OUT/pt_all.txt)"; grep -E "^FAILED|^E " $OUT/pt_all.txt | head -16 | tee -a $S
log "main part $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
[ $(left) -gt 200 ] && OUT=$OUT/ab bash scripts/device/s27d.sh
