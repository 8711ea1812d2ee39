#!/bin/bash
# For a later call (session 27 had no device time left for it): session 27's third call measured a GPT-2 B=32
# decode step of 0.665 ms (session 26: 0.612) with scripts/device/decode_tile_append.patch applied (the fused
# append's rows written from the landed tiles, LC_SDPA_DECODE_APPEND=early for the form before, and
# __launch_bounds__(128, 2) on the tensor-core decode), which was not landed. This A/B separates the two: the tree
# as landed (build/) against the tree with the patch (/tmp/p), in alternating processes (tree_ms.py), GPT-2 B=1
# and B=32, then the patch's append knob in one process (ring_ab). LIMIT: seconds planned.
set -u
ROOT=$PWD
rm -rf /tmp/p && mkdir -p /tmp/p && git archive HEAD | tar -x -C /tmp/p && (cd /tmp/p && git apply $ROOT/scripts/device/decode_tile_append.patch) || exit 1
(cd /tmp/p && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$(which python3) > /tmp/p_conf.log 2>&1 &&
  cmake --build build -j6 > /tmp/p_build.log 2>&1; echo "rc $?" >> /tmp/p_build.log) &
. scripts/device/build.sh
S=$OUT/summary.txt; log() { echo "$*" | tee -a $S; }
python3 -m lightning_core.models.make_random --arch gpt2 --size 124m /tmp/g2 > /dev/null 2>&1
wait; log "gpu $(cat $OUT/gpu.txt); /tmp/p: $(tail -1 /tmp/p_build.log); $(( $(date +%s) - T0 )) s"
for r in 1 2 3; do
    (cd scripts/device && TREE_MS_LABEL=landed PYTHONPATH=$ROOT/python timeout 60 python3 tree_ms.py /tmp/g2) 2>&1 | grep ms/step | tee -a $S
    (cd scripts/device && TREE_MS_LABEL=patched PYTHONPATH=/tmp/p/python timeout 60 python3 tree_ms.py /tmp/g2) 2>&1 | grep ms/step | tee -a $S
done
(cd /tmp/p/scripts/device && PYTHONPATH=/tmp/p/python RING_AB_SETTINGS="early=out_in,LC_SDPA_DECODE_APPEND=early;tiles=out_in" RING_AB_BATCHES=1,32 timeout 90 python3 ring_ab.py /tmp/g2 2>&1 | grep -v Warn | tee -a $S)
log "all $(( $(date +%s) - T0 )) s"; rm -f $OUT/configure.log $OUT/build.log
