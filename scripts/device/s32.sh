#!/bin/bash
# Session 32's plan for the next call (not run in session 32: no device was lent). (1) The tree as landed: the
# CUDA cases of the 16-bit graph/session tests (bias_add, attention_projection unfused on CUDA, attention and
# conv->attention sessions), of the graph-plan / session / non-finite attention tests, and session 31's review
# commit (the linear rounds-once test, test_lowp_ops); (2) fused_lowp_cuda.patch applied (the fused
# attention_projection and conv_attention kernels templated on the storage type, their masks opened to
# float16/bfloat16, the tests asking for the fused kernels on CUDA), rebuilt, the same tests again and
# compute-sanitizer memcheck of the 16-bit fused cases; (3) the host CPU's AMX matmul by pieces
# (scripts/probes/amx_probe.c) and its bfloat16 attention with and without VDPBF16PS (cpu_sdpa_ab.py); (4) session
# 30's one-off ctest -j4 failure of test_gemv_cuda_nk_grid_all, hunted; (5) the PDL timeline of both models' decode
# steps (s31.sh's last part). (3)-(5) only while time is left (LIMIT: seconds planned, default 560).
set -u
export BUILD_TARGETS="${BUILD_TARGETS-_C test_lowp_ops test_lowp_attn test_sessions test_gemv_cuda test_sdpa_cuda}"
. scripts/device/preamble.sh
rm -f $OUT/configure.log $OUT/build.log $OUT/gpu.txt
TESTS="tests/python/test_dtype_sessions_graph.py tests/python/test_graph_plan.py tests/python/test_sessions.py tests/python/test_attention_nonfinite.py"
card_tests() { # $1: a label
    timeout 60 build/test_lowp_ops > /tmp/lowp.txt 2>&1; log "$1 test_lowp_ops rc $?: $(tail -1 /tmp/lowp.txt)"
    timeout 60 build/test_lowp_attn > /tmp/lowpa.txt 2>&1; log "$1 test_lowp_attn rc $?: $(tail -1 /tmp/lowpa.txt)"
    timeout 60 build/test_sessions > /tmp/sess.txt 2>&1; log "$1 test_sessions rc $?: $(tail -1 /tmp/sess.txt)"
    timeout 120 python3 -m pytest -q $TESTS tests/python/test_dtype_ops.py -k "cuda" > $OUT/pt_$1.txt 2>&1
    log "$1 pytest (cuda) rc $?: $(tail -1 $OUT/pt_$1.txt)"; grep -E "^FAILED|^E " $OUT/pt_$1.txt | head -12 | tee -a $S
}
card_tests base
git apply scripts/device/fused_lowp_cuda.patch || { log "patch does not apply"; exit 1; }
cmake --build build -j16 --target $BUILD_TARGETS > /tmp/build2.log 2>&1 || { tail -20 /tmp/build2.log | tee -a $S; exit 1; }
card_tests patched
if command -v compute-sanitizer > /dev/null && [ $(left) -gt 300 ]; then
  timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 python3 -m pytest -q tests/python/test_dtype_sessions_graph.py \
    -k "cuda and (projection or conv_attention)" > /tmp/memcheck.txt 2>&1
  log "memcheck 16-bit fused (cuda) rc $?: $(grep -E "ERROR SUMMARY|passed|failed" /tmp/memcheck.txt | tail -2 | tr '\n' ' ')"
fi
git apply -R scripts/device/fused_lowp_cuda.patch
# the host CPU's AMX-BF16 matmul, piece by piece (issue 14's CPU row there: 0.24x oneDNN in session 26)
if [ $(left) -gt 220 ]; then
  blas=$(sed -n 's/^LC_BLAS_LIBRARY:FILEPATH=//p' build/CMakeCache.txt)
  cmake --build build -j16 --target lightning_core_static > /tmp/static.log 2>&1 &&
    gcc -O2 -I src -I include scripts/probes/amx_probe.c build/liblightning_core_static.a $blas -lm -lpthread -ldl -o /tmp/amx_probe &&
    timeout 90 /tmp/amx_probe 2 $(nproc) > $OUT/amx_probe.txt 2>&1; log "amx_probe rc $?"; cat $OUT/amx_probe.txt >> $S
fi
# the host CPU's bfloat16 attention with VDPBF16PS tiles and with them masked (float32 tiles)
if [ $(left) -gt 160 ]; then
  for mask in "" avx512bf16; do LC_CPU_DISABLE=$mask timeout 60 python3 scripts/device/cpu_sdpa_ab.py ${mask:-default} 2>&1 | tee -a $S; done
fi
# session 30's one-off failure of test_gemv_cuda_nk_grid_all beside three other GPU test processes: the four at
# once, twice, the failing one's output kept (patched objects were rebuilt above: rebuild the tests first)
if [ $(left) -gt 150 ]; then
  cmake --build build -j16 --target test_gemv_cuda test_sdpa_cuda test_lowp_ops > /tmp/build3.log 2>&1
  for i in 1 2; do
    (cd build && timeout 70 ctest -j4 -R "^(test_gemv_cuda|test_gemv_cuda_nk_grid_all|test_sdpa_cuda|test_lowp_ops)$" \
      --output-on-failure > /tmp/ctest_j4_$i.txt 2>&1); log "ctest -j4 (gemv x2, sdpa, lowp) run $i rc $?: $(grep -E "tests passed|tests failed" /tmp/ctest_j4_$i.txt)"
    grep -q "tests failed" /tmp/ctest_j4_$i.txt && cp /tmp/ctest_j4_$i.txt $OUT/ctest_j4_fail.txt
  done
fi
if [ $(left) -gt 100 ]; then
  wait
  cmake -S . -B build -DLC_TIMELINE=ON > /tmp/tl_conf.log 2>&1 && cmake --build build -j16 --target _C > /tmp/tl_build.log 2>&1 || { tail -20 /tmp/tl_build.log | tee -a $S; exit 1; }
  for d in /tmp/g2 /tmp/ll; do echo "== $d"; timeout 40 python3 scripts/device/timeline.py $d 2>&1 | grep -v Warn; done > $OUT/timeline.txt 2>&1
  grep -E "^==|median step|^  [a-z_]+ +[0-9]+ " $OUT/timeline.txt | tee -a $S
fi
log "all $(( $(date +%s) - T0 )) s"
