#!/bin/bash
# Session 22, call 4 (the landed state): the fused step's tests (defaults, and its knobs' paths), the engine and
# CLI on the card (fused off by default), fused_ab.py, grid_barrier_probe.cu, the models suite (the default path).
set -u
. scripts/device/preamble.sh
timeout 100 python3 -m pytest -q -x tests/python/test_decode_program.py > /tmp/pt.txt 2>&1
log "pytest test_decode_program rc $?: $(tail -1 /tmp/pt.txt)"; grep -E "^FAILED|^E " /tmp/pt.txt | head -12 | tee -a $S
LC_DP_INFLIGHT=0 LC_DP_FLAGS=1 LC_DP_L2AHEAD=4 timeout 100 python3 -m pytest -q -x tests/python/test_decode_program.py -k "steps or generate" > /tmp/pt2.txt 2>&1
log "pytest (LC_DP_INFLIGHT=0 LC_DP_FLAGS=1 LC_DP_L2AHEAD=4) rc $?: $(tail -1 /tmp/pt2.txt)"; grep -E "^FAILED|^E " /tmp/pt2.txt | head -6 | tee -a $S
timeout 90 python3 -m pytest -q tests/python/test_engine.py tests/python/test_generate_cli.py tests/python/test_kv_cache.py -k "not cpu" > /tmp/pe.txt 2>&1
log "pytest engine/cli/kv_cache (cuda) rc $?: $(tail -1 /tmp/pe.txt)"; grep -E "^FAILED|^E " /tmp/pe.txt | head -8 | tee -a $S
wait
(cd scripts/device && timeout 100 python3 fused_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
nvcc -O3 -arch=sm_90 -o /tmp/gbp scripts/probes/grid_barrier_probe.cu && timeout 30 /tmp/gbp 2>&1 | tee -a $S
[ "${SUITE:-1}" = 1 ] && [ $(left) -gt 120 ] && {
t=$(date +%s)
timeout $(( $(left) - 15 )) python3 -m lightning_core.bench --suite models --device cuda --repeats 1 --out /tmp/rep/models > /tmp/models.txt 2>&1
log "suite models rc $? in $(( $(date +%s) - t )) s: $(tail -1 /tmp/models.txt)"
mkdir -p $OUT/models; cp /tmp/rep/models/report.md /tmp/rep/models/summary.json $OUT/models/ 2>/dev/null; }
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
