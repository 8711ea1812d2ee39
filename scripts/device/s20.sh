#!/bin/bash
# Session 20, one call for session 19's prepared steps (a machine start is scarce): s19a.sh (applies
# gemv_nk_ab.patch, builds, test_gemv_cuda under the knobs, layout_ab.py under each setting, ncu of a decode
# step) with BUDGET (default 300 s); cpu_mid.py on the host's CPU with and without AMX; then s19b.sh on the same
# (patched) tree: the tests of the linear family, the engine and the CLI on CUDA, and the models suite while
# the call's time lasts. Summary: $OUT/summary.txt.
set -u
export OUT=${OUT:-/tmp/out}
BUDGET=${BUDGET:-300} MODELS=${MODELS:-g2 ll} NCU=${NCU:-ll:in_out ll:out_in} bash scripts/device/s19a.sh
for c in LC_CPU_DISABLE= LC_CPU_DISABLE=amx; do  # the host CPU: AMX against the AVX-512 BF16 medium-m path
  echo "== cpu_mid.py [$c]" | tee -a $OUT/summary.txt
  env $c PYTHONPATH=$PWD/python timeout 60 python3 scripts/device/cpu_mid.py 2>&1 | tee -a $OUT/summary.txt
done
echo "== s19b (patched tree, default knobs)" | tee -a $OUT/summary.txt
bash scripts/device/s19b.sh
