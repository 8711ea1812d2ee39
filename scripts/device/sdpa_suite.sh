#!/bin/bash
# The sdpa suite on the GPU (after tf32_check.sh built the tree): report under $OUT/sdpa.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD/python
timeout ${SUITE_S:-300} python3 -m lightning_core.bench --suite sdpa --device cuda --repeats ${REPEATS:-1} --out "$OUT/sdpa" 2>&1 | tail -60
