#!/bin/bash
# Session 20, call 2: the CPU bfloat16 routing on the AMX host (m <= 16, or m <= 64 with k·n >= 2^24: the
# medium-m AVX-512 BF16 kernel instead of the AMX tiles). Build; the low-precision ctests under every CPU mask
# (the AMX host is where "amx_bf16" and the routing are judged); the Python path test; cpu_mid.py with the
# routing and with LC_CPU_DISABLE=amx. Summary: $OUT/summary.txt.
set -u
. scripts/device/build.sh
S=$OUT/summary.txt; log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s; cpu: $(python3 -c 'import lightning_core as lc; print(lc.cpu_features())')"
(cd build && timeout 120 ctest -R "lowp|amx" > /tmp/ct.txt 2>&1); log "ctest lowp rc $?: $(grep 'tests passed' /tmp/ct.txt)"
grep -E "Failed|\*\*\*" /tmp/ct.txt | head -8 | tee -a $S
timeout 60 python3 -m pytest -q tests/python/test_dtype_ops.py > /tmp/pt.txt 2>&1; log "pytest test_dtype_ops rc $?: $(tail -1 /tmp/pt.txt)"
grep -E "^FAILED|Error" /tmp/pt.txt | head -5 | tee -a $S
for c in LC_CPU_DISABLE= LC_CPU_DISABLE=amx; do
  log "== cpu_mid.py [$c]"; env $c timeout 60 python3 scripts/device/cpu_mid.py 2>&1 | tee -a $S
done
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
