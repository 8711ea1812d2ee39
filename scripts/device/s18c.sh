#!/bin/bash
# Session 18, GPU call 3 (short: the last of the device budget): this tree and HEAD (/tmp/p) built side by side;
# test_gemv_cuda (every case, no timing table) and the Python tests of the linear family, the GEMV routing, the
# engine and the CLI on CUDA; then GPT-2 124M and LLaMA 1.1B bf16 B=1 decode alternating HEAD / this tree (one
# round, two samples each). Summary: $OUT/summary.txt (written as it goes).
set -u
. scripts/device/ab_tree.sh
S=$OUT/summary.txt; L=/tmp/s18c; mkdir -p $L
log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s"
(python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1;
 python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1) &
LC_TEST_BENCH=0 timeout 100 build/test_gemv_cuda > $L/gemv.txt 2>&1; log "test_gemv_cuda rc $?: $(tail -1 $L/gemv.txt)"
grep -E "FAIL" $L/gemv.txt | head -6 | tee -a $S
timeout 150 python3 -m pytest -q -x tests/python/test_linear_wt.py tests/python/test_norm_linear.py tests/python/test_silu_mul_linear.py \
  tests/python/test_dtype_ops.py tests/python/test_engine.py tests/python/test_generate_cli.py -k "not cpu" > $L/pytest.txt 2>&1
log "pytest rc $?: $(tail -1 $L/pytest.txt)"; grep -E "^FAILED|^ERROR|Error" $L/pytest.txt | head -8 | tee -a $S
wait; log "HEAD build: $(tail -1 /tmp/p_build.log); tested $(( $(date +%s) - T0 )) s"
IDS=$(python3 -c "print(','.join(str(i) for i in range(1, 33)))")
for m in g2 ll; do
  for t in head new head new; do
    P=$ROOT/python; [ $t = head ] && P=/tmp/p/python
    log "[$t] $m $(PYTHONPATH=$P timeout 40 python3 -m lightning_core.generate --model /tmp/$m --ids $IDS \
      --max-new-tokens 64 --device cuda --dtype bfloat16 --bench 5 --quiet 2>&1 | tail -1 | grep -o 'decode.*')"
  done
done
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
