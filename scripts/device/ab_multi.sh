#!/bin/bash
# A/B of patches applied one after another in one device call: build the tree and measure (decode attention
# as graph replays, GPT-2 124M bf16 decode through the CLI, twice); then for each patch: git apply, rebuild,
# measure (and test_sdpa_cuda when it touches sdpa). At the end, on the tree with every patch: test_gemv_cuda, the Python KV-cache
# tests, and the decode kernel's stage stamps (decode_probe.sh). Usage: bash scripts/device/ab_multi.sh P1 [P2 ..].
# REPS=1: one GPT-2 run a measurement; FINAL_TESTS="": no C test at the end; TEST_EACH=0: no test after each
# patch (a short call).
set -u
. scripts/device/build.sh
L=/tmp/ab_logs; mkdir -p $L # only the summaries go to $OUT (a call brings back a few files)
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
IDS=$(python3 -c "print(','.join(str(i) for i in range(1, 33)))")
measure() { # $1: tag
  timeout 100 python3 scripts/device/decode_graph.py > "$L/decode_graph_$1.txt" 2>&1
  sed "s/^/[$1] /" "$L/decode_graph_$1.txt" >> "$OUT/decode_graph_all.txt"
  grep -o "^B=[0-9]* Skv=[0-9]*.*default [0-9.]* us" "$L/decode_graph_$1.txt" | sed "s/^/[$1] /"
  for r in $(seq ${REPS:-2}); do
    echo "[$1] gpt2 $(timeout 60 python3 -m lightning_core.generate --model /tmp/g2 --ids $IDS --max-new-tokens 64 \
      --device cuda --dtype bfloat16 --bench 5 --quiet 2>&1 | tail -1 | grep -o 'decode.*')"
  done
}
measure base
for P in "$@"; do
  tag=$(basename "$P" .patch)
  git apply "$P" || { echo "$P does not apply"; break; }
  cmake --build build -j16 > "$L/build_$tag.log" 2>&1 || { grep -E "error" "$L/build_$tag.log" | head -20; exit 1; }
  measure "$tag"
  if [ "${TEST_EACH:-1}" = 1 ] && grep -q "sdpa" "$P"; then # the patch's own tests before the next one goes on
    LC_TEST_BENCH=0 timeout 150 build/test_sdpa_cuda > "$L/test_sdpa_$tag.txt" 2>&1
    echo "[$tag] test_sdpa_cuda rc $?: $(tail -1 "$L/test_sdpa_$tag.txt")"; grep -iE "fail" "$L/test_sdpa_$tag.txt" | grep -v " 0 failed" | head -10
  fi
done
for t in ${FINAL_TESTS-test_gemv_cuda}; do
  LC_TEST_BENCH=0 timeout 150 build/$t > "$L/${t}_final.txt" 2>&1; echo "[final] $t rc $?: $(tail -1 "$L/${t}_final.txt")"
  grep -iE "fail" "$L/${t}_final.txt" | grep -v " 0 failed" | head -10
done
timeout 90 python3 -m pytest -q tests/python/test_kv_cache.py tests/python/test_kv_cache_fused.py tests/python/test_engine.py \
  > "$L/pytest_final.txt" 2>&1; echo "[final] pytest rc $?: $(tail -1 "$L/pytest_final.txt")"
echo "measured and tested $(( $(date +%s) - T0 )) s"
timeout 90 bash scripts/device/decode_probe.sh > /dev/null 2>&1; grep -v "^  entry\|^  tiles" "$OUT/probe.txt" 2>/dev/null | head -40
echo "all $(( $(date +%s) - T0 )) s"
