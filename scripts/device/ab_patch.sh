#!/bin/bash
# A/B of a patch in one device call: build the tree, measure (decode attention as graph replays, GPT-2 124M bf16
# decode through the CLI), apply the patch (git apply), rebuild, run test_sdpa_cuda and test_gemv_cuda on it,
# measure again. Usage: bash scripts/device/ab_patch.sh scripts/device/params_smem.patch. Logs under $OUT.
set -u
PATCH=${1:?usage: ab_patch.sh PATCH}
. scripts/device/build.sh
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
IDS=$(python3 -c "print(','.join(str(i) for i in range(1, 33)))")
measure() { # $1: tag
  timeout 100 python3 scripts/device/decode_graph.py > "$OUT/decode_graph_$1.txt" 2>&1
  grep -o "^B=[0-9]* Skv=[0-9]*.*default [0-9.]* us" "$OUT/decode_graph_$1.txt" | sed "s/^/[$1] /"
  for r in 1 2; do
    echo "[$1] gpt2 $(timeout 60 python3 -m lightning_core.generate --model /tmp/g2 --ids $IDS --max-new-tokens 64 \
      --device cuda --dtype bfloat16 --bench 5 --quiet 2>&1 | tail -1)"
  done
}
measure base
git apply "$PATCH" || { echo "patch does not apply"; exit 1; }
cmake --build build -j16 > "$OUT/build_patched.log" 2>&1 || { grep -E "error" "$OUT/build_patched.log" | head -20; exit 1; }
for t in test_sdpa_cuda test_gemv_cuda; do
  LC_TEST_BENCH=0 timeout 150 build/$t > "$OUT/${t}_patched.txt" 2>&1; echo "[patched] $t rc $?: $(tail -1 "$OUT/${t}_patched.txt")"
  grep -iE "fail" "$OUT/${t}_patched.txt" | head -10
done
measure patched
echo "all $(( $(date +%s) - T0 )) s"
