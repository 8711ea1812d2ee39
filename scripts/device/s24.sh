#!/bin/bash
# The ring GEMV's knobs (session 24; LC_GEMV_RING_SYNC, the barrier form, was removed after this run): test_gemv_cuda
# with the warps on their own rows (default) and a block barrier a stage (LC_GEMV_RING_SYNC=1, session 23's loop), and under the larger rings (correctness and the timing table's
# ring column), then ring_ab.py decode A/B at B=1 (GPT-2 124M, LLaMA 1.1B): ring 96 / 160 / 200 KiB with 4 or 8
# slots, 2 blocks an SM, against in_out; the same in a process with LC_PDL_CARVEOUT=100 (read once a process); a
# second default-process round in reverse order for the noise. LIMIT (default 560): seconds the script plans for.
set -u
. scripts/device/preamble.sh
for cfg in "LC_GEMV_RING_SYNC=0" "LC_GEMV_RING_SYNC=1" "LC_GEMV_RING_KB=160" "LC_GEMV_RING_KB=200 LC_GEMV_RING_SLOTS=8"; do
  env $cfg LC_TEST_VERBOSE=1 timeout 90 build/test_gemv_cuda > /tmp/t.txt 2>&1; log "test_gemv_cuda $cfg rc $?: $(tail -1 /tmp/t.txt)"
  grep -E "FAIL|differ" /tmp/t.txt | head -5 | tee -a $S
  sed -n '/^timing/,$p' /tmp/t.txt | awk '{print $1, $(NF-2), $(NF-1), $NF}' | tee -a $S
done
wait
R="r96=out_in,LC_GEMV_RING=1;r96sync=out_in,LC_GEMV_RING=1,LC_GEMV_RING_SYNC=1;r160sync=out_in,LC_GEMV_RING=1,LC_GEMV_RING_SYNC=1,LC_GEMV_RING_KB=160;r160=out_in,LC_GEMV_RING=1,LC_GEMV_RING_KB=160;r200s8=out_in,LC_GEMV_RING=1,LC_GEMV_RING_KB=200,LC_GEMV_RING_SLOTS=8;r200=out_in,LC_GEMV_RING=1,LC_GEMV_RING_KB=200;r96b2=out_in,LC_GEMV_RING=1,LC_GEMV_RING_BPS=2;in_out=in_out,LC_GEMV_RING=0"
ab() { (cd scripts/device && RING_AB_SETTINGS="$1" RING_AB_BATCHES=${2:-1} timeout $3 python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S); }
[ $(left) -gt 100 ] && { log "default carveout:"; ab "$R" 1,4 150; }
[ $(left) -gt 80 ] && { log "LC_PDL_CARVEOUT=100:"; LC_PDL_CARVEOUT=100 ab "r160=out_in,LC_GEMV_RING=1,LC_GEMV_RING_KB=160;r200s8=out_in,LC_GEMV_RING=1,LC_GEMV_RING_KB=200,LC_GEMV_RING_SLOTS=8;in_out=in_out,LC_GEMV_RING=0;r96=out_in,LC_GEMV_RING=1" 1 100; }
[ $(left) -gt 60 ] && { log "default carveout, reversed:"; ab "in_out=in_out,LC_GEMV_RING=0;r200s8=out_in,LC_GEMV_RING=1,LC_GEMV_RING_KB=200,LC_GEMV_RING_SLOTS=8;r160=out_in,LC_GEMV_RING=1,LC_GEMV_RING_KB=160;r96=out_in,LC_GEMV_RING=1;r96sync=out_in,LC_GEMV_RING=1,LC_GEMV_RING_SYNC=1" 1 $(( $(left) - 10 )); }
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
