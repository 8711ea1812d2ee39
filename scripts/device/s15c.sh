#!/bin/bash
# Session 15's short GPU run: build; test_sdpa_cuda and test_gemv_cuda (correctness; benches skipped); decode
# attention as graph replays; GPT-2 124M bf16 decode through the CLI (the measurement of params_smem.patch,
# design.md "decode kernels' fixed cost"). Logs under $OUT.
set -u
. scripts/device/build.sh
for t in test_sdpa_cuda test_gemv_cuda; do
  LC_TEST_BENCH=0 timeout 150 build/$t > "$OUT/$t.txt" 2>&1; echo "$t rc $? ($(( $(date +%s) - T0 )) s)"
  grep -iE "fail" "$OUT/$t.txt" | head -10; tail -1 "$OUT/$t.txt"
done
timeout 100 python3 scripts/device/decode_graph.py 2>&1 | tee "$OUT/decode_graph.txt"
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
IDS=$(python3 -c "print(','.join(str(i) for i in range(1, 33)))")
timeout 60 python3 -m lightning_core.generate --model /tmp/g2 --ids $IDS --max-new-tokens 64 --device cuda \
    --dtype bfloat16 --bench 5 --quiet 2>&1 | tail -1
echo "all $(( $(date +%s) - T0 )) s"
