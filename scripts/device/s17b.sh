#!/bin/bash
# Session 17, GPU call 2 (the tree to land): build; the CUDA tests of the 16-bit gelu and of the decode loop's
# graph_steps (C tests side by side with pytest); the bf16 gelu against torch; graph_steps 1 / 8 / 16 on GPT-2
# 124M and LLaMA 1.1B; with SUITE=1 the sdpa suite after them. Summary: $OUT/summary.txt.
set -u
. scripts/device/build.sh
S=$OUT/summary.txt; L=/tmp/s17b; mkdir -p $L
log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s"
for t in test_lowp_ops test_ops test_gemv_cuda; do (LC_TEST_BENCH=0 timeout 200 build/$t > $L/$t.txt 2>&1; echo "rc $?" >> $L/$t.txt) & done
timeout 240 python3 -m pytest -q tests/python/test_engine.py tests/python/test_ops_elementwise.py tests/python/test_kv_cache.py \
  tests/python/test_kv_cache_fused.py tests/python/test_norm_linear.py tests/python/test_dtype_ops.py tests/python/test_generate_cli.py \
  -k "not cpu" > $L/pytest.txt 2>&1
log "pytest rc $?: $(tail -1 $L/pytest.txt)"; grep -E "^FAILED|^ERROR" $L/pytest.txt | head -10 | tee -a $S
wait
for t in test_lowp_ops test_ops test_gemv_cuda; do log "$t $(grep -E 'passed|failed' $L/$t.txt | tail -1) $(tail -1 $L/$t.txt)"; grep -iE "bad|fail" $L/$t.txt | grep -v " 0 failed" | head -5 | tee -a $S; done
log "tested $(( $(date +%s) - T0 )) s"
log "[gelu] $(timeout 60 python3 scripts/device/gelu_ab.py 2>&1 | tail -1)"
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1
timeout 200 python3 scripts/device/graph_steps.py /tmp/g2 /tmp/ll 2>&1 | tee -a $S
log "measured $(( $(date +%s) - T0 )) s"
if [ "${SUITE:-0}" = 1 ]; then
  timeout 150 python3 -m lightning_core.bench --suite sdpa --device cuda --repeats 1 --out /tmp/rep/sdpa 2>&1 | tail -4
  mkdir -p $OUT/sdpa; cp /tmp/rep/sdpa/report.md /tmp/rep/sdpa/sdpa.csv $OUT/sdpa/ 2>/dev/null
fi
log "all $(( $(date +%s) - T0 )) s"
