#!/bin/bash
# Session 24's last device seconds: the room form (LC_GEMV_RING_ROOM=1; commit 6bea9be, removed after this run
# measured it slower in the decode step) on the card: test_gemv_cuda (every [n, k]
# case in every ring form, with the timing table's tiles / ring / room columns), then ring_ab.py B=1 default / room
# while time is left. LIMIT (default 170).
set -u
LIMIT=${LIMIT:-170}
. scripts/device/preamble.sh
LC_TEST_VERBOSE=1 timeout 80 build/test_gemv_cuda > $OUT/gemv.txt 2>&1; log "test_gemv_cuda rc $?: $(tail -1 $OUT/gemv.txt)"
grep -E "FAIL|differ" $OUT/gemv.txt | head -10 | tee -a $S
sed -n '/^timing/,$p' $OUT/gemv.txt | awk '{print $1, "tiles", $(NF-8), "ring", $(NF-5), "room", $(NF-2)}' | tee -a $S
wait
[ $(left) -gt 25 ] && (cd scripts/device && RING_AB_SETTINGS="default=out_in;room=out_in,LC_GEMV_RING_ROOM=1" timeout $(( $(left) - 5 )) python3 ring_ab.py /tmp/g2 /tmp/ll 2>&1 | grep -v Warn | tee -a $S)
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
