#!/usr/bin/env bash
# gpu_check.sh — on the lent GPU machine, in one call: build (make test set-up, CUDA on), the C and
# Python tests with the GPU cases, the C op harness on CUDA under compute-sanitizer memcheck, and the
# GPU benchmark against torch. Logs go to $OUT (or ./gpu_check_out). Usage: scripts/gpu_check.sh [--quick]
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(pwd)/gpu_check_out}
mkdir -p "$OUT"
QUICK=${1:-}
status=0
step() { echo "== $1"; }

step "environment"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nvcc --version | tail -1; python3 --version; nproc; } 2>&1 | tee "$OUT/env.log"

step "build + C and Python tests (make test)"
make test > "$OUT/make_test.log" 2>&1 || status=1
grep -E "lightning_core:|tests passed|passed|failed" "$OUT/make_test.log" | tail -8

step "C op harness on cuda under compute-sanitizer memcheck"
if command -v compute-sanitizer >/dev/null 2>&1; then
    (cd build && LC_TEST_DEVICES=cuda compute-sanitizer --tool memcheck --error-exitcode 3 ./test_ops) > "$OUT/memcheck.log" 2>&1 || status=1
    grep -E "ERROR SUMMARY|passed|failed" "$OUT/memcheck.log" | tail -3
else
    echo "compute-sanitizer not found" | tee "$OUT/memcheck.log"
fi

step "GPU benchmark"
PYTHONUNBUFFERED=1 .venv/bin/python -m lightning_core.bench $QUICK --suite kernel,pipeline,ml --device cuda --repeats 1 --out "$OUT/bench" > "$OUT/gpu_bench.log" 2>&1 || status=1
tail -60 "$OUT/gpu_bench.log"
exit $status
