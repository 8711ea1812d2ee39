#!/bin/bash
# Session 31's second call (ran): the 16-bit linear's cuBLASLt epilogue as the first call left it (float16: bias, ReLU,
# + residual; bfloat16: + residual alone, its bias epilogue having rounded first) under the linear and engine tests,
# its prefill A/B (linear_lt_ab.py), then the models and sdpa suites (reports only: at most 8 files come back), then
# the PDL timeline of both models' decode steps if time is left. LIMIT: seconds planned.
# (LC_LINEAR_LT=all below, the bias-through-cuBLASLt diagnostic, was removed after this call.)
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C test_lowp_ops}"
. scripts/device/preamble.sh
rm -f $OUT/configure.log $OUT/build.log $OUT/gpu.txt
timeout 60 build/test_lowp_ops > /tmp/lowp.txt 2>&1; log "test_lowp_ops rc $?: $(tail -1 /tmp/lowp.txt)"
grep -E " bad |linear path" /tmp/lowp.txt | head -10 | tee -a $S
LC_LINEAR_LT=all timeout 60 build/test_lowp_ops > /tmp/lowp_all.txt 2>&1; log "test_lowp_ops LC_LINEAR_LT=all rc $?: $(tail -1 /tmp/lowp_all.txt)"
grep -E " bad " /tmp/lowp_all.txt | head -10 | tee -a $S
timeout 150 python3 -m pytest -q tests/python/test_dtype_ops.py tests/python/test_ops_linear.py tests/python/test_linear_wt.py \
  tests/python/test_norm_linear.py tests/python/test_silu_mul_linear.py tests/python/test_engine.py tests/python/test_tp.py \
  tests/python/test_generate_cli.py tests/python/test_kv_cache_fused.py -k "cuda" > $OUT/pt.txt 2>&1
log "pytest linear/engine (cuda) rc $?: $(tail -1 $OUT/pt.txt)"; grep -E "^FAILED|^E " $OUT/pt.txt | head -12 | tee -a $S
wait
(cd scripts/device && timeout 90 python3 linear_lt_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
[ $(left) -gt 140 ] && models_suite 125
if [ $(left) -gt 70 ]; then
  t=$(date +%s); timeout 60 python3 -m lightning_core.bench --suite sdpa --device cuda --repeats 1 --out /tmp/rep/sdpa > /tmp/sdpa_suite.txt 2>&1
  log "suite sdpa rc $? in $(( $(date +%s) - t )) s: $(tail -1 /tmp/sdpa_suite.txt)"; cp /tmp/rep/sdpa/report.md $OUT/sdpa_report.md 2>/dev/null
fi
if [ $(left) -gt 100 ]; then
  cmake -S . -B build -DLC_TIMELINE=ON > /tmp/tl_conf.log 2>&1 && cmake --build build -j16 --target _C > /tmp/tl_build.log 2>&1 || { tail -20 /tmp/tl_build.log | tee -a $S; exit 1; }
  for d in /tmp/g2 /tmp/ll; do echo "== $d"; timeout 40 python3 scripts/device/timeline.py $d 2>&1 | grep -v Warn; done > $OUT/timeline.txt 2>&1
  grep -E "^==|median step|^  [a-z_]+ +[0-9]+ " $OUT/timeline.txt | tee -a $S
fi
log "all $(( $(date +%s) - T0 )) s"
