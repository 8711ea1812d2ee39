#!/bin/bash
# Session 22: the fused decode step (lc_decode_program: a batch-1 decode step as one persistent kernel). Build;
# test_decode_program.py on the card; fused_ab.py (GPT-2 124M, LLaMA 1.1B bf16, B=1: fused against the
# op-by-op step, alternating); the engine's CUDA tests; the models suite if time allows. Summary: $OUT/summary.txt.
set -u
. scripts/device/preamble.sh
timeout 150 python3 -m pytest -q -x tests/python/test_decode_program.py > /tmp/pt.txt 2>&1
log "pytest test_decode_program rc $?: $(tail -1 /tmp/pt.txt)"; grep -E "^FAILED|^E " /tmp/pt.txt | head -12 | tee -a $S
cp /tmp/pt.txt $OUT/pt_decode_program.txt
wait
cd scripts/device
timeout 150 python3 fused_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S
cd ../..
log "gpu part $(( $(date +%s) - T0 )) s"
[ $(left) -gt 100 ] && { timeout 90 python3 -m pytest -q tests/python/test_engine.py tests/python/test_generate_cli.py -k "not cpu" > /tmp/pe.txt 2>&1
  log "pytest engine/cli (cuda) rc $?: $(tail -1 /tmp/pe.txt)"; grep -E "^FAILED|^E " /tmp/pe.txt | head -8 | tee -a $S; }
[ $(left) -gt 150 ] && {
t=$(date +%s)
timeout $(( $(left) - 20 )) python3 -m lightning_core.bench --suite models --device cuda --repeats 1 --out /tmp/rep/models > /tmp/models.txt 2>&1
log "suite models rc $? in $(( $(date +%s) - t )) s: $(tail -1 /tmp/models.txt)"
mkdir -p $OUT/models; cp /tmp/rep/models/report.md /tmp/rep/models/summary.json $OUT/models/ 2>/dev/null; cp /tmp/models.txt $OUT/models/ 2>/dev/null; }
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
