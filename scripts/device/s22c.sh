#!/bin/bash
# Session 22, call 3: the fused step with the norm vectors and bias slice copied in (cp.async) before the barrier,
# the residual rows kept in shared memory, a one-round partial merge; the copies under way a block
# (LC_DP_INFLIGHT: the second call's probe showed
# every L2 round trip of the critical path at 1.5-3 us while the ring's copies queue, and L2 prefetch ahead made
# it worse); tests at the default and at INFLIGHT=2; the sweep; the probe and fused_ab.py at the best guess.
set -u
. scripts/device/preamble.sh
timeout 100 python3 -m pytest -q -x tests/python/test_decode_program.py > /tmp/pt.txt 2>&1
log "pytest test_decode_program rc $?: $(tail -1 /tmp/pt.txt)"; grep -E "^FAILED|^E " /tmp/pt.txt | head -12 | tee -a $S
LC_DP_INFLIGHT=2 LC_DP_FLAGS=1 timeout 100 python3 -m pytest -q -x tests/python/test_decode_program.py -k "steps or generate" > /tmp/pt2.txt 2>&1
log "pytest (LC_DP_INFLIGHT=2 LC_DP_FLAGS=1) rc $?: $(tail -1 /tmp/pt2.txt)"; grep -E "^FAILED|^E " /tmp/pt2.txt | head -6 | tee -a $S
wait
cd scripts/device
for kv in "LC_DP_INFLIGHT=0" "LC_DP_INFLIGHT=1" "LC_DP_INFLIGHT=2" "LC_DP_INFLIGHT=3" "LC_DP_INFLIGHT=4" "LC_DP_INFLIGHT=2 LC_DP_FLAGS=1"; do
  [ $(left) -lt 60 ] && { log "skip $kv: $(left) s left"; continue; }
  env $kv timeout 40 python3 fused_knob.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S
done
[ $(left) -gt 60 ] && LC_DP_PROBE=1 LC_DP_INFLIGHT=${PROBE_INFLIGHT:-2} timeout 40 python3 dp_probe.py /tmp/g2 /tmp/ll 2>&1 | grep -v "Warn\|layer 0 rows" | tee -a $S
[ $(left) -gt 50 ] && LC_DP_INFLIGHT=${PROBE_INFLIGHT:-2} timeout 60 python3 fused_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S
cd ../..
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
