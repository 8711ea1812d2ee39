#!/bin/bash
# Session 18, GPU call 1: (1) the GEMV layout probe (scripts/probes/gemv_layout_probe.cu); (2) the library GEMV's
# timing table (test_gemv_cuda, LC_TEST_VERBOSE=1, GPT-2's and LLaMA's decode shapes) with the split plan and with
# the narrow-tile kernel (LC_GEMV_NARROW=8/16/32; every test case of the file under each); (3) gemv_norm_stage.patch
# in a second tree (/tmp/p): its GEMV tests; (4) GPT-2 124M and LLaMA 1.1B bf16 B=1 decode, base / narrow 16 / patch,
# alternating, 2 rounds. Summary: $OUT/summary.txt.
set -u
ROOT=$PWD
rm -rf /tmp/p && mkdir -p /tmp/p && git ls-files -z | xargs -0 cp --parents -t /tmp/p
git show HEAD:src/backend/cuda/gemv_cuda.cu > /tmp/p/src/backend/cuda/gemv_cuda.cu # the patch is against HEAD's GEMV
(cd /tmp/p && git apply $ROOT/scripts/device/gemv_norm_stage.patch) || echo "patch does not apply"
(cd /tmp/p && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(which python3) > /tmp/p_conf.log 2>&1 &&
  cmake --build build -j8 > /tmp/p_build.log 2>&1; echo "rc $?" >> /tmp/p_build.log) &
. scripts/device/build.sh
S=$OUT/summary.txt; L=/tmp/s18a; mkdir -p $L
log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); base build $(( $(date +%s) - T0 )) s"
nvcc -arch=sm_90 -O3 -std=c++17 -I src -o /tmp/glp scripts/probes/gemv_layout_probe.cu > $L/probe_build.txt 2>&1 || cat $L/probe_build.txt
wait; log "patched build: $(tail -1 /tmp/p_build.log) at $(( $(date +%s) - T0 )) s"; grep -E "error" /tmp/p_build.log | head
timeout 100 /tmp/glp 2>&1 | tee -a $S
for tw in 0 16 8 32; do
  LC_GEMV_NARROW=$tw LC_TEST_VERBOSE=1 timeout 150 build/test_gemv_cuda > $L/gemv_$tw.txt 2>&1
  log "[narrow $tw] test_gemv_cuda rc $?: $(tail -1 $L/gemv_$tw.txt)"; grep -E "FAIL" $L/gemv_$tw.txt | head -5 | tee -a $S
  sed -n '/^timing/,/^test_gemv_cuda/p' $L/gemv_$tw.txt | tee -a $S
done
log "tables $(( $(date +%s) - T0 )) s"
(cd /tmp/p && LC_TEST_BENCH=0 timeout 200 build/test_gemv_cuda > $L/gemv_p.txt 2>&1; echo "rc $?" >> $L/gemv_p.txt) &
(cd /tmp/p && PYTHONPATH=/tmp/p/python timeout 200 python3 -m pytest -q tests/python/test_norm_linear.py tests/python/test_silu_mul_linear.py \
  tests/python/test_dtype_ops.py -k "gemv or norm or silu" > $L/pytest_p.txt 2>&1; echo "rc $?" >> $L/pytest_p.txt) &
(LC_GEMV_NARROW=16 timeout 200 python3 -m pytest -q tests/python/test_norm_linear.py tests/python/test_silu_mul_linear.py \
  tests/python/test_dtype_ops.py tests/python/test_engine.py -k "(gemv or norm or silu or graph) and not cpu" > $L/pytest_n16.txt 2>&1; echo "rc $?" >> $L/pytest_n16.txt) &
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1
wait
log "[patch] test_gemv_cuda $(tail -2 $L/gemv_p.txt | tr '\n' ' ')"; grep -iE "FAIL" $L/gemv_p.txt | head -5 | tee -a $S
log "[patch] pytest $(tail -2 $L/pytest_p.txt | tr '\n' ' ')"; grep -E "^FAILED|^ERROR" $L/pytest_p.txt | head -10 | tee -a $S
log "[narrow 16] pytest $(tail -2 $L/pytest_n16.txt | tr '\n' ' ')"; grep -E "^FAILED|^ERROR" $L/pytest_n16.txt | head -10 | tee -a $S
log "tested $(( $(date +%s) - T0 )) s"
IDS=$(python3 -c "print(','.join(str(i) for i in range(1, 33)))")
for r in 1 2; do
  for m in g2 ll; do
    for t in base n16 patch; do
      P=$ROOT/python; N=0; [ $t = patch ] && P=/tmp/p/python; [ $t = n16 ] && N=16
      log "[$t] $m r$r $(LC_GEMV_NARROW=$N PYTHONPATH=$P timeout 60 python3 -m lightning_core.generate --model /tmp/$m --ids $IDS \
        --max-new-tokens 64 --device cuda --dtype bfloat16 --bench 5 --quiet 2>&1 | tail -1 | grep -o 'decode.*')"
    done
  done
done
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
