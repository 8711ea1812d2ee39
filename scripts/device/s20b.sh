#!/bin/bash
# Session 20, call 2: the CPU bfloat16 routing on the AMX host (m <= 16, or m <= 64 with k·n >= 2^24: the
# medium-m AVX-512 BF16 kernel instead of the AMX tiles). Build; the low-precision ctests under every CPU mask
# (the AMX host is where "amx_bf16" and the routing are judged); the Python path test; cpu_mid.py with the
# routing (CPU_CFGS); head_ab.py, batch 1 (GPT-2's lm_head [n, k] or a [k, n] copy). Summary: $OUT/summary.txt.
set -u
. scripts/device/build.sh
S=$OUT/summary.txt; log() { echo "$*" | tee -a $S; }
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s; cpu: $(python3 -c 'import lightning_core as lc; print(lc.cpu_features())')"
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1 &
(cd build && timeout 120 ctest -R "lowp|amx" > /tmp/ct.txt 2>&1); log "ctest lowp rc $?: $(grep 'tests passed' /tmp/ct.txt)"
grep -E "Failed|\*\*\*" /tmp/ct.txt | head -8 | tee -a $S
timeout 60 python3 -m pytest -q tests/python/test_dtype_ops.py > /tmp/pt.txt 2>&1; log "pytest test_dtype_ops rc $?: $(tail -1 /tmp/pt.txt)"
grep -E "^FAILED|Error" /tmp/pt.txt | head -5 | tee -a $S
for c in ${CPU_CFGS:-LC_CPU_DISABLE=}; do  # (LC_CPU_DISABLE=amx: the kernel without the routing, as in s20.sh)
  log "== cpu_mid.py [$c]"; env $c timeout 60 python3 scripts/device/cpu_mid.py 2>&1 | tee -a $S
done
wait
HEAD_AB_BATCHES=${HEAD_AB_BATCHES:-1} timeout 90 python3 scripts/device/head_ab.py /tmp/g2 2>&1 | tee -a $S
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
