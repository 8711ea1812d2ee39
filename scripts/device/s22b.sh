#!/bin/bash
# Session 22, call 2: the fused step with run-time key splits, a branch-free partial merge and the release-word
# barrier; its tests (defaults, then the knobs' paths); where its time goes (dp_probe.py); fused_ab.py against
# the op-by-op step; the knobs (LC_DP_FLAGS=1 the first barrier, LC_DP_L2AHEAD chunks past the ring into L2).
set -u
. scripts/device/preamble.sh
timeout 100 python3 -m pytest -q -x tests/python/test_decode_program.py > /tmp/pt.txt 2>&1
log "pytest test_decode_program rc $?: $(tail -1 /tmp/pt.txt)"; grep -E "^FAILED|^E " /tmp/pt.txt | head -12 | tee -a $S
LC_DP_FLAGS=1 LC_DP_L2AHEAD=12 timeout 100 python3 -m pytest -q -x tests/python/test_decode_program.py -k "steps or generate" > /tmp/pt2.txt 2>&1
log "pytest (LC_DP_FLAGS=1 LC_DP_L2AHEAD=12) rc $?: $(tail -1 /tmp/pt2.txt)"; grep -E "^FAILED|^E " /tmp/pt2.txt | head -6 | tee -a $S
wait
cd scripts/device
LC_DP_PROBE=1 timeout 60 python3 dp_probe.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S
timeout 100 python3 fused_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S
for kv in "LC_DP_FLAGS=1" "LC_DP_L2AHEAD=8" "LC_DP_L2AHEAD=24" "LC_DP_L2AHEAD=8 LC_DP_FLAGS=1"; do
  [ $(left) -lt 40 ] && { log "skip $kv: $(left) s left"; continue; }
  env $kv timeout 40 python3 fused_knob.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S
done
cd ../..
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
