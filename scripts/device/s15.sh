#!/bin/bash
# Session 15's GPU run: build; test_sdpa_cuda (correctness of every decode merge mode, its bench skipped);
# decode attention as graph replays (decode_graph.py); the kernel's stage stamps (decode_probe.sh); GPT-2
# 124M bf16 decode through the CLI (--bench). Logs under $OUT.
set -u
. scripts/device/build.sh
LC_TEST_BENCH=0 timeout 200 build/test_sdpa_cuda > "$OUT/test_sdpa_cuda.txt" 2>&1; echo "test_sdpa_cuda rc $? ($(( $(date +%s) - T0 )) s)"
grep -iE "fail" "$OUT/test_sdpa_cuda.txt" | head -20; tail -2 "$OUT/test_sdpa_cuda.txt"
timeout 120 python3 scripts/device/decode_graph.py 2>&1 | tee "$OUT/decode_graph.txt"
echo "graph done $(( $(date +%s) - T0 )) s"
timeout 150 bash scripts/device/decode_probe.sh > /dev/null 2>&1; cat "$OUT/probe.txt" 2>/dev/null | grep -v "^  entry\|^  tiles"
echo "probe done $(( $(date +%s) - T0 )) s"
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
IDS=$(python3 -c "print(','.join(str(i) for i in range(1, 33)))")
for env in "" "LC_SDPA_DECODE_CLUSTER=0" "LC_PDL_CARVEOUT=100" "LC_PDL=0"; do
  echo "== gpt2 ${env:-default}"
  env $env timeout 90 python3 -m lightning_core.generate --model /tmp/g2 --ids $IDS --max-new-tokens 64 --device cuda \
    --dtype bfloat16 --bench 5 --quiet 2>&1 | tail -4
done
echo "all $(( $(date +%s) - T0 )) s"
