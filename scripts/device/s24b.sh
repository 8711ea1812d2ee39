#!/bin/bash
# Session 24's defaults on the card: the ring GEMV on (warps on their own rows, two blocks an SM where they fit),
# LLaMA stored out_in. test_gemv_cuda (ring with 2 and 1 blocks an SM, tiles) with its timing table; the CUDA
# tests of the GEMV prologues and the model runner; ring_ab.py (defaults / 1 block an SM / 64 KiB ring / in_out,
# B = 1 and 4); the models suite (report under $OUT/models); ring_ab with LC_PDL_CARVEOUT=100; the rest of the
# CUDA pytest while time is left. LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
LC_TEST_VERBOSE=1 timeout 120 build/test_gemv_cuda > $OUT/gemv.txt 2>&1; log "test_gemv_cuda rc $?: $(tail -1 $OUT/gemv.txt)"
grep -E "FAIL|differ" $OUT/gemv.txt | head -10 | tee -a $S
sed -n '/^timing/,$p' $OUT/gemv.txt | tee -a $S
timeout 150 python3 -m pytest -q -x tests/python/test_linear_wt.py tests/python/test_norm_linear.py tests/python/test_silu_mul_linear.py tests/python/test_engine.py tests/python/test_generate_cli.py tests/python/test_decode_program.py tests/python/test_prefetch.py tests/python/test_ref_models.py tests/python/test_checkpoint_hf.py -k "not cpu" > /tmp/pt.txt 2>&1
log "pytest gemv/models (cuda) rc $?: $(tail -1 /tmp/pt.txt)"; grep -E "^FAILED|^E " /tmp/pt.txt | head -12 | tee -a $S
wait
ab() { (cd scripts/device && RING_AB_SETTINGS="$1" RING_AB_BATCHES=1,4 timeout $2 python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S); }
[ $(left) -gt 150 ] && { log "ring_ab:"; ab "default=out_in;b1=out_in,LC_GEMV_RING_BPS=1;r64=out_in,LC_GEMV_RING_KB=64;in_out=in_out" 120; }
[ $(left) -gt 140 ] && {
t=$(date +%s)
timeout 130 python3 -m lightning_core.bench --suite models --device cuda --repeats 1 --out /tmp/rep/models > /tmp/models.txt 2>&1
log "suite models rc $? in $(( $(date +%s) - t )) s: $(tail -1 /tmp/models.txt)"
grep -o "decode B=[0-9]* | graph | cuda | [0-9.]* | torch_graph | [0-9.]* | [0-9.]*x" /tmp/rep/models/report.md | tee -a $S
mkdir -p $OUT/models; cp -r /tmp/rep/models/report.md /tmp/rep/models/summary.json $OUT/models/ 2>/dev/null; }
[ $(left) -gt 70 ] && { log "LC_PDL_CARVEOUT=100:"; LC_PDL_CARVEOUT=100 ab "default=out_in;in_out=in_out" 60; }
[ $(left) -gt 60 ] && { timeout $(( $(left) - 15 )) python3 -m pytest -q tests/python -k "cuda and not cpu" -x --deselect tests/python/test_linear_wt.py > /tmp/pt2.txt 2>&1
  log "pytest -k cuda rc $?: $(tail -1 /tmp/pt2.txt)"; grep -E "^FAILED|^E " /tmp/pt2.txt | head -12 | tee -a $S; }
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
