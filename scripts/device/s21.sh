#!/bin/bash
# Session 21: lc.prefetch (the next weights into L2 during a decode step's attention). Build; the prefetch and
# tests on the card; prefetch_ab.py for GPT-2 124M and LLaMA 1.1B in each LC_PREFETCH_MODE (line first);
# LLaMA out_in with prefetch; then session 20's unrun AMX-host items (lowp ctests, test_dtype_ops, cpu_mid.py,
# head_ab.py B=1). Summary: $OUT/summary.txt.
set -u
. scripts/device/build.sh
S=$OUT/summary.txt; log() { echo "$*" | tee -a $S; }
left() { echo $(( 560 - $(date +%s) + T0 )); }  # seconds left of the call's budget (the limit is 600)
log "gpu: $(cat $OUT/gpu.txt); build $(( $(date +%s) - T0 )) s; cpu: $(python3 -c 'import lightning_core as lc; print(lc.cpu_features())' 2>&1 | head -c 300)"
(python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1;
 python3 -m lightning_core.models.make_random --arch llama --size 1b --dtype bfloat16 /tmp/ll > /dev/null 2>&1) &
timeout 90 python3 -m pytest -q -x tests/python/test_prefetch.py > /tmp/pt.txt 2>&1
log "pytest test_prefetch rc $?: $(tail -1 /tmp/pt.txt)"; grep -E "^FAILED|^E " /tmp/pt.txt | head -8 | tee -a $S
wait
cd scripts/device
for mode in line bulk; do
  [ $(left) -lt 120 ] && { log "skip mode $mode: $(left) s left"; continue; }
  LC_PREFETCH_MODE=$mode PF_MBS=0,6,16 timeout 50 python3 prefetch_ab.py /tmp/g2 2>&1 | grep -v Warn | tee -a $S
  LC_PREFETCH_MODE=$mode PF_MBS=0,16,32,48 timeout 80 python3 prefetch_ab.py /tmp/ll 2>&1 | grep -v Warn | tee -a $S
done
PF_LAYOUT=out_in PF_MBS=0,16,32 PF_BATCHES=1 timeout 60 python3 prefetch_ab.py /tmp/ll 2>&1 | tee -a $S
HEAD_AB_BATCHES=1 timeout 60 python3 head_ab.py /tmp/g2 2>&1 | tee -a $S
cd ../..
log "gpu part $(( $(date +%s) - T0 )) s"
[ $(left) -gt 170 ] && {
t=$(date +%s)  # the models suite with the prefetch on (LC_MODELS_PREFETCH_MB=16) if time allows
LC_MODELS_PREFETCH_MB=${SUITE_PF:-16} timeout ${SUITE_S:-110} python3 -m lightning_core.bench --suite models --device cuda --repeats 1 --out /tmp/rep/models > /tmp/models.txt 2>&1
log "suite models (prefetch ${SUITE_PF:-16} MiB) rc $? in $(( $(date +%s) - t )) s: $(tail -1 /tmp/models.txt)"
mkdir -p $OUT/models; cp /tmp/rep/models/report.md /tmp/rep/models/summary.json $OUT/models/ 2>/dev/null; }
[ $(left) -lt 60 ] && { log "no time for the CPU items: $(left) s left"; rm -f $OUT/configure.log $OUT/build.log; exit 0; }
(cd build && timeout 90 ctest -R "lowp|amx" > /tmp/ct.txt 2>&1); log "ctest lowp rc $?: $(grep 'tests passed' /tmp/ct.txt)"
grep -E "Failed|\*\*\*" /tmp/ct.txt | head -8 | tee -a $S
timeout 60 python3 -m pytest -q tests/python/test_dtype_ops.py > /tmp/pt2.txt 2>&1; log "pytest test_dtype_ops rc $?: $(tail -1 /tmp/pt2.txt)"
grep -E "^FAILED" /tmp/pt2.txt | head -5 | tee -a $S
log "== cpu_mid.py"; timeout 60 python3 scripts/device/cpu_mid.py 2>&1 | tee -a $S
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
