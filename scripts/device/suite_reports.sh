#!/bin/bash
# Build, then the named suites (SUITES, default sdpa) on CUDA; only report.md and the csv of each come back
# under $OUT/<suite>/ (the full output stays in /tmp: the device tool returns a limited number of files).
set -u
. scripts/device/build.sh
for s in ${SUITES:-sdpa}; do
  timeout ${SUITE_S:-150} python3 -m lightning_core.bench --suite "$s" --device cuda --repeats ${REPEATS:-1} --out "/tmp/rep/$s" 2>&1 | tail -10
  mkdir -p "$OUT/$s"; cp "/tmp/rep/$s/report.md" "/tmp/rep/$s/$s.csv" "$OUT/$s/" 2>/dev/null
done
